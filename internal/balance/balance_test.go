package balance

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const picks = 100_000

// weighted lists the algorithms that honour weights and slow start.
var weighted = []Algorithm{WeightedRoundRobin, LeastConn, LeastRequest, Random}

// endpoints returns one endpoint per weight, in zone "", with addresses
// 10.0.0.1:80, 10.0.0.2:80, ...
func endpoints(weights ...int) []*Endpoint {
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = NewEndpoint(fmt.Sprintf("10.0.0.%d:80", i+1), w, "")
	}
	return eps
}

func mustNew(t testing.TB, alg Algorithm, eps []*Endpoint, opts Options) Balancer {
	t.Helper()
	b, err := New(alg, eps, opts)
	if err != nil {
		t.Fatalf("New(%s): %v", alg, err)
	}
	return b
}

// count makes n picks with keys 0..n-1 and counts them per endpoint.
func count(t testing.TB, b Balancer, n int, skip func(*Endpoint) bool) map[*Endpoint]int {
	t.Helper()
	got := make(map[*Endpoint]int)
	for i := range n {
		e := b.Pick(HashKey(strconv.Itoa(i)), skip)
		if e == nil {
			t.Fatalf("pick %d: nil", i)
		}
		got[e]++
	}
	return got
}

// checkShares fails unless each endpoint got its share of total picks
// within tol (absolute).
func checkShares(t *testing.T, eps []*Endpoint, got map[*Endpoint]int, want []float64, tol float64) {
	t.Helper()
	total := 0
	for _, c := range got {
		total += c
	}
	for i, e := range eps {
		share := float64(got[e]) / float64(total)
		if math.Abs(share-want[i]) > tol {
			t.Errorf("%s: share %.4f, want %.4f ± %.2f", e.Addr, share, want[i], tol)
		}
	}
}

// weightShares returns each weight's share of their sum.
func weightShares(weights ...int) []float64 {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	shares := make([]float64, len(weights))
	for i, w := range weights {
		shares[i] = float64(w) / float64(sum)
	}
	return shares
}

func TestDistribution(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			eps := endpoints(weights...)
			want := weightShares(weights...)
			if alg == RoundRobin {
				want = weightShares(1, 1, 1, 1) // round robin ignores weights
			}
			got := count(t, mustNew(t, alg, eps, Options{}), picks, nil)
			checkShares(t, eps, got, want, 0.02)
		})
	}
}

func TestSmoothWRRSequence(t *testing.T) {
	eps := endpoints(5, 1, 1)
	names := map[*Endpoint]string{eps[0]: "a", eps[1]: "b", eps[2]: "c"}
	b := mustNew(t, WeightedRoundRobin, eps, Options{})
	var seq []string
	for range 14 {
		seq = append(seq, names[b.Pick(0, nil)])
	}
	const want = "a a b a c a a a a b a c a a" // nginx's sequence, twice
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("sequence %q, want %q", got, want)
	}
}

func TestLeastConnPrefersFewestInFlight(t *testing.T) {
	eps := endpoints(1, 1, 1)
	eps[0].Begin()
	eps[0].Begin()
	eps[1].Begin()
	b := mustNew(t, LeastConn, eps, Options{})
	for range 100 {
		if e := b.Pick(0, nil); e != eps[2] {
			t.Fatalf("picked %s, want the idle %s", e.Addr, eps[2].Addr)
		}
	}

	// Picks that stay in flight fill the endpoints in proportion to weight.
	eps = endpoints(1, 3)
	b = mustNew(t, LeastConn, eps, Options{})
	for range 40 {
		b.Pick(0, nil).Begin()
	}
	if a, c := eps[0].InFlight(), eps[1].InFlight(); a != 10 || c != 30 {
		t.Errorf("in flight %d and %d, want 10 and 30", a, c)
	}
}

func TestLeastRequestPrefersLowLatency(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	slow := eps[3]
	for _, e := range eps {
		e.Begin()
		e.End(10 * time.Millisecond)
	}
	slow.Begin()
	slow.End(200 * time.Millisecond)
	got := count(t, mustNew(t, LeastRequest, eps, Options{}), picks, nil)
	// The slow endpoint only wins when drawn twice: 1/16 of the picks.
	if share := float64(got[slow]) / picks; share > 0.10 {
		t.Errorf("slow endpoint got %.3f of the picks, want well under its fair 0.25", share)
	}
}

func TestLeastRequestAvoidsBusy(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	busy := eps[0]
	for range 10 {
		busy.Begin()
	}
	got := count(t, mustNew(t, LeastRequest, eps, Options{}), picks, nil)
	if share := float64(got[busy]) / picks; share > 0.10 {
		t.Errorf("busy endpoint got %.3f of the picks, want well under its fair 0.25", share)
	}
}

// TestLeastRequestUnderLoad keeps 100 requests in flight, completing a random
// one after each pick at equal latency, and checks that throughput follows
// the weights.
func TestLeastRequestUnderLoad(t *testing.T) {
	weights := []int{1, 2, 3, 4}
	eps := endpoints(weights...)
	b := mustNew(t, LeastRequest, eps, Options{})
	var open []*Endpoint
	got := make(map[*Endpoint]int)
	for i := range picks + 1000 {
		e := b.Pick(0, nil)
		e.Begin()
		open = append(open, e)
		if i >= 1000 { // warmed up
			got[e]++
		}
		if len(open) > 100 {
			k := int(HashKey(strconv.Itoa(i)) % uint64(len(open)))
			open[k].End(10 * time.Millisecond)
			open[k] = open[len(open)-1]
			open = open[:len(open)-1]
		}
	}
	checkShares(t, eps, got, weightShares(weights...), 0.02)
}

func TestSkip(t *testing.T) {
	for _, alg := range Algorithms() {
		for _, zone := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/zone=%v", alg, zone), func(t *testing.T) {
				eps := endpoints(1, 2, 3, 4)
				opts := Options{}
				if zone {
					eps[0].Zone, eps[1].Zone = "a", "a"
					opts = Options{ZoneAware: true, LocalZone: "a"}
				}
				b := mustNew(t, alg, eps, opts)
				skipped := eps[1]
				got := count(t, b, 10_000, func(e *Endpoint) bool { return e == skipped })
				if got[skipped] != 0 {
					t.Errorf("picked the skipped endpoint %d times", got[skipped])
				}
				only := eps[2]
				got = count(t, b, 1000, func(e *Endpoint) bool { return e != only })
				if got[only] != 1000 {
					t.Errorf("picked the one unskipped endpoint %d of 1000 times", got[only])
				}
				for k := range uint64(100) {
					if e := b.Pick(k, func(*Endpoint) bool { return true }); e != nil {
						t.Fatalf("all skipped: picked %s, want nil", e.Addr)
					}
				}
			})
		}
	}
}

func TestEmpty(t *testing.T) {
	for _, alg := range Algorithms() {
		for _, opts := range []Options{{}, {ZoneAware: true, LocalZone: "a"}} {
			b := mustNew(t, alg, nil, opts)
			if e := b.Pick(1, nil); e != nil {
				t.Errorf("%s: picked %s from no endpoints", alg, e.Addr)
			}
			if e := b.Pick(1, func(*Endpoint) bool { return false }); e != nil {
				t.Errorf("%s: picked %s from no endpoints", alg, e.Addr)
			}
		}
	}
}

// fakeClock is a clock for slow start that moves only when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestSlowStart(t *testing.T) {
	const window = 10 * time.Second
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		at    time.Duration // after t0
		ratio float64       // of the new endpoint's weight to the old one's
	}{
		{name: "start", at: 0, ratio: 0.1},
		{name: "half", at: window / 2, ratio: 0.55},
		{name: "end", at: window, ratio: 1},
		{name: "after", at: 3 * window, ratio: 1},
	}
	for _, alg := range weighted {
		for _, tc := range tests {
			t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
				clock := newFakeClock(t0)
				old, fresh := NewEndpoint("old:80", 2, ""), NewEndpoint("new:80", 2, "")
				old.SetHealthySince(t0.Add(-time.Hour))
				fresh.SetHealthySince(t0)
				b := mustNew(t, alg, []*Endpoint{old, fresh}, Options{SlowStart: window, Now: clock.Now})
				clock.Advance(tc.at)
				got := count(t, b, picks, nil)
				ratio := float64(got[fresh]) / float64(got[old])
				if math.Abs(ratio-tc.ratio) > 0.03 {
					t.Errorf("new/old picks %.3f, want %.2f", ratio, tc.ratio)
				}
			})
		}
	}
	// Round robin and consistent hashing ignore slow start.
	for _, alg := range []Algorithm{RoundRobin, ConsistentHash} {
		clock := newFakeClock(t0)
		eps := endpoints(1, 1)
		eps[1].SetHealthySince(t0)
		got := count(t, mustNew(t, alg, eps, Options{SlowStart: window, Now: clock.Now}), picks, nil)
		checkShares(t, eps, got, []float64{0.5, 0.5}, 0.02)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		alg  Algorithm
		eps  []*Endpoint
		opts Options
		want string
	}{
		{name: "nil endpoint", alg: Random, eps: []*Endpoint{nil}, want: "endpoint 0 is nil"},
		{name: "zero weight", alg: Random, eps: endpoints(0), want: "weight 0"},
		{name: "huge weight", alg: Random, eps: endpoints(MaxWeight + 1), want: "weight 1000001"},
		{name: "duplicate", alg: Random, eps: append(endpoints(1), endpoints(1)...), want: "listed twice"},
		{name: "negative slow start", alg: Random, opts: Options{SlowStart: -1}, want: "slow start"},
		{name: "local percent", alg: Random, opts: Options{MinLocalPercent: 101}, want: "min local percent"},
		{name: "no local zone", alg: Random, opts: Options{ZoneAware: true}, want: "local zone"},
		{name: "table not prime", alg: ConsistentHash, opts: Options{MaglevTableSize: 100}, want: "not a prime"},
		{name: "table too small", alg: ConsistentHash, eps: endpoints(1, 1, 1), opts: Options{MaglevTableSize: 2}, want: "does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.alg, tc.eps, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	_, err := New("fastest", endpoints(1), Options{})
	if !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("New: %v, want ErrUnknownAlgorithm", err)
	}
	if !strings.Contains(err.Error(), `"fastest"`) {
		t.Errorf("error %q does not name the algorithm", err)
	}
	for _, alg := range Algorithms() {
		if !strings.Contains(err.Error(), string(alg)) {
			t.Errorf("error %q does not list %s", err, alg)
		}
	}
}

func TestAlgorithmValid(t *testing.T) {
	for _, alg := range Algorithms() {
		if !alg.Valid() {
			t.Errorf("%s is not valid", alg)
		}
	}
	for _, alg := range []Algorithm{"", "Round_Robin", "maglev"} {
		if alg.Valid() {
			t.Errorf("%q is valid", alg)
		}
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	t0 := time.Now()
	skip := func(e *Endpoint) bool { return e.Addr == "10.0.0.2:80" }
	for _, alg := range Algorithms() {
		for _, opts := range []Options{
			{},
			{ZoneAware: true, LocalZone: "a", MinLocalPercent: 90},
			{SlowStart: time.Hour},
		} {
			eps := endpoints(1, 2, 3, 4)
			eps[0].Zone = "a"
			eps[3].SetHealthySince(t0)
			b := mustNew(t, alg, eps, opts)
			var key uint64
			for _, skip := range []func(*Endpoint) bool{nil, skip} {
				allocs := testing.AllocsPerRun(1000, func() {
					key++
					b.Pick(key, skip)
				})
				if allocs != 0 {
					t.Errorf("%s %+v skip=%v: %v allocs per pick", alg, opts, skip != nil, allocs)
				}
			}
		}
	}
}

func TestConcurrentPicks(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			eps := endpoints(1, 2, 3, 4)
			eps[0].Zone = "a"
			b := mustNew(t, alg, eps, Options{ZoneAware: true, LocalZone: "a", SlowStart: time.Minute})
			var wg sync.WaitGroup
			var nils atomic.Int64
			for g := range 8 {
				wg.Go(func() {
					for i := range 2000 {
						e := b.Pick(uint64(g*2000+i), nil)
						if e == nil {
							nils.Add(1)
							continue
						}
						e.Begin()
						e.End(time.Duration(i%10+1) * time.Millisecond)
					}
				})
			}
			wg.Wait()
			if n := nils.Load(); n != 0 {
				t.Errorf("%d nil picks", n)
			}
			for _, e := range eps {
				if n := e.InFlight(); n != 0 {
					t.Errorf("%s: %d in flight after all ended", e.Addr, n)
				}
			}
		})
	}
}

func TestHashKey(t *testing.T) {
	for _, s := range []string{"", "a", "10.1.2.3", "session=4f7c2a"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := HashKey(s), h.Sum64(); got != want {
			t.Errorf("HashKey(%q) = %#x, want FNV-1a %#x", s, got, want)
		}
	}
	s := "x-user-id: 12345"
	if allocs := testing.AllocsPerRun(100, func() { HashKey(s) }); allocs != 0 {
		t.Errorf("HashKey: %v allocs", allocs)
	}
}

func TestEndpoint(t *testing.T) {
	e := NewEndpoint("a:80", 1, "")
	e.Begin()
	e.Begin()
	if n := e.InFlight(); n != 2 {
		t.Errorf("in flight %d, want 2", n)
	}
	e.End(100 * time.Millisecond)
	if l := e.LatencyEWMA(); l != 100*time.Millisecond {
		t.Errorf("EWMA after first sample %v, want 100ms", l)
	}
	e.End(0) // no sample
	if l := e.LatencyEWMA(); l != 100*time.Millisecond {
		t.Errorf("EWMA after no sample %v, want 100ms", l)
	}
	if n := e.InFlight(); n != 0 {
		t.Errorf("in flight %d, want 0", n)
	}
	e.Begin()
	e.End(200 * time.Millisecond)
	if l := e.LatencyEWMA(); l != 130*time.Millisecond {
		t.Errorf("EWMA %v, want 130ms (alpha 0.3)", l)
	}

	if !e.HealthySince().IsZero() {
		t.Errorf("new endpoint healthy since %v, want zero", e.HealthySince())
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	e.SetHealthySince(t0)
	if got := e.HealthySince(); !got.Equal(t0) {
		t.Errorf("healthy since %v, want %v", got, t0)
	}
	e.SetHealthySince(time.Time{})
	if !e.HealthySince().IsZero() {
		t.Errorf("healthy since %v after reset, want zero", e.HealthySince())
	}
}
