package health

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRiseFall drives the active-check state machine: each result is 'S'
// (pass) or 'F' (fail), and want gives the Healthy verdict after each one
// ('H' healthy, 'U' unhealthy).
func TestRiseFall(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rise, fall   int
		healthyFirst bool
		results      string
		want         string
	}{
		{name: "falls after exactly fall failures", rise: 2, fall: 3, results: "FFF", want: "HHU"},
		{name: "success resets the failure streak", rise: 2, fall: 3, results: "FFSFFSFFF", want: "HHHHHHHHU"},
		{name: "rises after exactly rise successes", rise: 2, fall: 3, results: "FFFSS", want: "HHUUH"},
		{name: "failure resets the success streak", rise: 3, fall: 1, results: "FSSFSSS", want: "UUUUUUH"},
		{name: "require healthy first starts unhealthy", rise: 2, fall: 3, healthyFirst: true, results: "SS", want: "UH"},
		{name: "require healthy first stays down on failures", rise: 1, fall: 3, healthyFirst: true, results: "FFFFS", want: "UUUUH"},
		{name: "rise 1 fall 1 flips every time", rise: 1, fall: 1, results: "FSFS", want: "UHUH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, clk, rec := newTestGroup(t, OutlierSpec{}, 0)
			tg := g.Add("10.0.0.1:80", &CheckSpec{Rise: tc.rise, Fall: tc.fall}, tc.healthyFirst)
			if got := tg.Status().Healthy; got != !tc.healthyFirst {
				t.Fatalf("initial Healthy = %v, want %v", got, !tc.healthyFirst)
			}
			wantSince := t0
			var got strings.Builder
			for i, r := range tc.results {
				clk.Advance(time.Second)
				before := tg.Status().Healthy
				tg.recordCheck(r == 'S', fmt.Sprintf("failure %d", i), clk.Now())
				st := tg.Status()
				if st.Healthy {
					got.WriteByte('H')
				} else {
					got.WriteByte('U')
				}
				if st.Healthy != before {
					wantSince = clk.Now()
				}
				if !st.Since.Equal(wantSince) {
					t.Errorf("after result %d Since = %s, want %s", i, st.Since, wantSince)
				}
				if !st.LastCheck.Equal(clk.Now()) {
					t.Errorf("after result %d LastCheck = %s, want now", i, st.LastCheck)
				}
				if r == 'F' && st.LastError != fmt.Sprintf("failure %d", i) {
					t.Errorf("after result %d LastError = %q", i, st.LastError)
				}
				if st.ConsecutiveSuccesses != 0 && st.ConsecutiveFailures != 0 {
					t.Errorf("after result %d both streaks set: %+v", i, st)
				}
				if r := tg.Routable(clk.Now()); r != st.Healthy {
					t.Errorf("after result %d Routable = %v, Healthy = %v", i, r, st.Healthy)
				}
			}
			if got.String() != tc.want {
				t.Fatalf("health after %s = %s, want %s", tc.results, got.String(), tc.want)
			}
			// One event and one onChange per transition.
			transitions := 0
			prev := map[bool]byte{true: 'U', false: 'H'}[tc.healthyFirst]
			for i := range tc.want {
				if tc.want[i] != prev {
					transitions++
				}
				prev = tc.want[i]
			}
			if ev := rec.kinds(); len(ev) != transitions {
				t.Errorf("events %q, want %d transitions", ev, transitions)
			}
			if got := rec.changeCount(); got != transitions {
				t.Errorf("onChange called %d times, want %d", got, transitions)
			}
		})
	}
}

func TestNoCheckIsAlwaysHealthy(t *testing.T) {
	g, clk, _ := newTestGroup(t, OutlierSpec{}, 0)
	tg := g.Add("10.0.0.1:80", nil, true) // requireHealthyFirst means nothing without a check
	tg.recordCheck(false, "ignored", clk.Now())
	if st := tg.Status(); !st.Healthy || !st.LastCheck.IsZero() {
		t.Fatalf("status of a target without a check = %+v, want healthy and never checked", st)
	}
}

func TestConsecutive5xxEjectsWithGrowingTime(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{Consecutive5xx: 5, BaseEjectionTime: 30 * time.Second}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	g.Add("10.0.0.2:80", nil, false) // with one target, 50% would still allow one ejection

	for range 4 {
		tg.Observe5xx()
	}
	if tg.Status().Ejected {
		t.Fatal("ejected after 4 5xx, want 5")
	}
	tg.Observe5xx()
	st := tg.Status()
	if !st.Ejected || st.Ejections != 1 || !st.EjectedUntil.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("after 5 5xx: %+v, want ejected once until t0+30s", st)
	}
	if tg.Routable(clk.Now()) {
		t.Fatal("ejected target is routable")
	}
	if !st.Healthy {
		t.Fatal("ejection changed the active-check verdict")
	}
	if got := rec.kinds(); !slices.Equal(got, []string{"10.0.0.1:80:ejected"}) {
		t.Fatalf("events %q, want one ejection", got)
	}
	if got := rec.changeCount(); got != 1 {
		t.Fatalf("onChange called %d times, want 1", got)
	}

	clk.Advance(30*time.Second - time.Nanosecond)
	if !tg.Status().Ejected {
		t.Fatal("un-ejected before base_ejection_time")
	}
	clk.Advance(time.Nanosecond)
	if tg.Status().Ejected || !tg.Routable(clk.Now()) {
		t.Fatal("still ejected after base_ejection_time")
	}
	if got := rec.kinds(); !slices.Equal(got, []string{"10.0.0.1:80:uneject"}) {
		t.Fatalf("events %q, want the end of the ejection", got)
	}
	if got := rec.changeCount(); got != 2 {
		t.Fatalf("onChange called %d times, want 2", got)
	}

	// The second ejection lasts twice as long.
	ejectedAt := clk.Now()
	for range 5 {
		tg.Observe5xx()
	}
	st = tg.Status()
	if !st.Ejected || st.Ejections != 2 || !st.EjectedUntil.Equal(ejectedAt.Add(60*time.Second)) {
		t.Fatalf("second ejection: %+v, want ejected twice until +60s", st)
	}
	clk.Advance(59 * time.Second)
	if !tg.Status().Ejected {
		t.Fatal("second ejection ended before 60s")
	}
	clk.Advance(time.Second)
	if tg.Status().Ejected {
		t.Fatal("second ejection did not end after 60s")
	}
	if got := rec.changeCount(); got != 4 {
		t.Fatalf("onChange called %d times, want 4", got)
	}
	if clk.Pending() != 0 {
		t.Fatalf("%d timers left after the ejections ended", clk.Pending())
	}
}

func TestEjectionTimeCapAndDecay(t *testing.T) {
	g, clk, _ := newTestGroup(t, OutlierSpec{Consecutive5xx: 1, BaseEjectionTime: 10 * time.Second, MaxEjectionTime: 25 * time.Second, MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	ejectFor := func() time.Duration {
		t.Helper()
		start := clk.Now()
		tg.Observe5xx()
		st := tg.Status()
		if !st.Ejected {
			t.Fatal("not ejected")
		}
		d := st.EjectedUntil.Sub(start)
		clk.Advance(d)
		return d
	}
	var got []time.Duration
	for range 4 {
		got = append(got, ejectFor())
	}
	if want := []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("ejection times %v, want %v (base × count, capped)", got, want)
	}
	// The multiplier stopped at 3 (the first to reach the cap). Every
	// max_ejection_time spent un-ejected takes one off: after two, the
	// next ejection is (3-2+1) × base.
	clk.Advance(2 * 25 * time.Second)
	if d := ejectFor(); d != 20*time.Second {
		t.Fatalf("ejection after a quiet 2×max = %s, want 20s", d)
	}
	clk.Advance(10 * 25 * time.Second)
	if d := ejectFor(); d != 10*time.Second {
		t.Fatalf("ejection after a long quiet time = %s, want base 10s", d)
	}
	if got := tg.Status().Ejections; got != 6 {
		t.Fatalf("Ejections = %d, want 6", got)
	}
}

func TestSuccessResetsPassiveStreak(t *testing.T) {
	g, _, _ := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	for range 4 {
		tg.Observe5xx()
	}
	tg.ObserveSuccess()
	for range 4 {
		tg.Observe5xx()
	}
	if tg.Status().Ejected {
		t.Fatal("ejected although a success broke the 5xx streak")
	}
	tg.Observe5xx()
	if !tg.Status().Ejected {
		t.Fatal("not ejected after 5 5xx in a row")
	}
}

func TestConnectFailuresEject(t *testing.T) {
	g, _, _ := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	tg.ObserveConnectFailure()
	tg.ObserveConnectFailure()
	tg.Observe5xx() // the backend answered: the connect-failure streak restarts
	tg.ObserveConnectFailure()
	tg.ObserveConnectFailure()
	if tg.Status().Ejected {
		t.Fatal("ejected although a response broke the connect-failure streak")
	}
	tg.ObserveConnectFailure()
	if !tg.Status().Ejected {
		t.Fatal("not ejected after 3 connect failures in a row")
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 50}, 0)
	var ts []*Target
	for i := range 4 {
		ts = append(ts, g.Add(fmt.Sprintf("10.0.0.%d:80", i+1), nil, false))
	}
	ejected := func() int {
		n := 0
		for _, tg := range ts {
			if tg.Status().Ejected {
				n++
			}
		}
		return n
	}
	for _, tg := range ts {
		for range 5 {
			tg.Observe5xx()
		}
	}
	if got := ejected(); got != 2 {
		t.Fatalf("%d of 4 ejected at 50%%, want 2", got)
	}
	if ts[2].Status().Ejected || ts[3].Status().Ejected {
		t.Fatal("the later failing targets were ejected instead of the first two")
	}
	routable, panicking := g.Routable()
	if len(routable) != 2 || panicking {
		t.Fatalf("Routable() = %d targets, panic %v; want 2, false", len(routable), panicking)
	}
	rec.kinds()

	// Once the first two ejections end, the third target's streak, kept
	// while it could not be ejected, ejects it at its next failure.
	clk.Advance(30 * time.Second)
	if got := ejected(); got != 0 {
		t.Fatalf("%d ejected after base_ejection_time, want 0", got)
	}
	ts[2].Observe5xx()
	if !ts[2].Status().Ejected {
		t.Fatal("third target not ejected once there was room")
	}
	if got := rec.kinds(); !slices.Equal(got, []string{"10.0.0.1:80:uneject", "10.0.0.2:80:uneject", "10.0.0.3:80:ejected"}) {
		t.Fatalf("events %q", got)
	}
}

func TestSingleTargetMayBeEjected(t *testing.T) {
	g, _, _ := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 10}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	for range 5 {
		tg.Observe5xx()
	}
	if !tg.Status().Ejected {
		t.Fatal("with one target, 10% rounds down to 0 but one ejection must be allowed")
	}
}

func TestOutlierDisabled(t *testing.T) {
	g, _, rec := newTestGroup(t, OutlierSpec{Disabled: true}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	for range 100 {
		tg.Observe5xx()
		tg.ObserveConnectFailure()
	}
	if tg.Status().Ejected || len(rec.kinds()) != 0 {
		t.Fatal("ejected with outlier detection disabled")
	}
}

func TestRemovedTargetIgnoresObservations(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", &CheckSpec{Fall: 1}, false)
	for range 4 {
		tg.Observe5xx()
	}
	g.Remove("10.0.0.1:80")
	tg.Observe5xx()
	tg.recordCheck(false, "gone", clk.Now())
	if st := tg.Status(); st.Ejected || !st.Healthy {
		t.Fatalf("removed target changed: %+v", st)
	}
	if len(g.Targets()) != 0 || len(rec.kinds()) != 0 || rec.changeCount() != 0 {
		t.Fatal("Remove left a target or reported a change")
	}
}

func TestRemoveCancelsEjectionTimer(t *testing.T) {
	g, clk, _ := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", nil, false)
	for range 5 {
		tg.Observe5xx()
	}
	if clk.Pending() != 1 {
		t.Fatalf("Pending = %d after an ejection, want 1", clk.Pending())
	}
	g.Remove(tg.Addr())
	if clk.Pending() != 0 {
		t.Fatalf("Pending = %d after Remove, want 0", clk.Pending())
	}
}
