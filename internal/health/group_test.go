package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestPanicThreshold(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{}, 50)
	spec := &CheckSpec{Rise: 1, Fall: 1}
	a := g.Add("10.0.0.1:80", spec, false)
	b := g.Add("10.0.0.2:80", spec, false)
	c := g.Add("10.0.0.3:80", spec, false)

	b.recordCheck(false, "GET /: status 503", clk.Now())
	if got, panicking := g.Routable(); len(got) != 2 || panicking {
		t.Fatalf("one of 3 down: Routable() = %d targets, panic %v; want 2, false", len(got), panicking)
	}
	c.recordCheck(false, "GET /: status 503", clk.Now())
	got, panicking := g.Routable()
	if !panicking || !slices.Equal(got, []*Target{a, b, c}) {
		t.Fatalf("two of 3 down with threshold 50%%: Routable() = %d targets, panic %v; want all 3, true", len(got), panicking)
	}
	if ev := rec.kinds(); !slices.Equal(ev, []string{"10.0.0.2:80:unhealthy", "10.0.0.3:80:unhealthy", "panic"}) {
		t.Fatalf("events %q", ev)
	}
	if !strings.Contains(rec.logText(), "panic mode") {
		t.Errorf("panic not logged: %s", rec.logText())
	}

	c.recordCheck(true, "", clk.Now())
	if got, panicking := g.Routable(); len(got) != 2 || panicking {
		t.Fatalf("after recovery: Routable() = %d targets, panic %v; want 2, false", len(got), panicking)
	}
	if ev := rec.kinds(); !slices.Equal(ev, []string{"10.0.0.3:80:healthy", "panic_over"}) {
		t.Fatalf("events %q", ev)
	}
}

func TestNoPanicThreshold(t *testing.T) {
	g, clk, _ := newTestGroup(t, OutlierSpec{}, 0)
	tg := g.Add("10.0.0.1:80", &CheckSpec{Fall: 1}, false)
	tg.recordCheck(false, "down", clk.Now())
	if got, panicking := g.Routable(); len(got) != 0 || panicking {
		t.Fatalf("Routable() = %d targets, panic %v; want none without a panic threshold", len(got), panicking)
	}
	if got, panicking := NewGroup("empty", OutlierSpec{}, 100, nil, nil).Routable(); len(got) != 0 || panicking {
		t.Fatal("an empty group panics")
	}
}

func TestOnChange(t *testing.T) {
	clk := NewFakeClock(t0)
	var g *Group
	var calls atomic.Int32
	var lastRoutable atomic.Int32
	// onChange may call back into the Group: it runs without the lock.
	g = NewGroup("web", OutlierSpec{MaxEjectionPercent: 100}, 0, clk, func() {
		calls.Add(1)
		r, _ := g.Routable()
		lastRoutable.Store(int32(len(r)))
	})
	g.SetLogger(discardLogger())
	t.Cleanup(g.Stop)
	check := func(want, wantRoutable int32, step string) {
		t.Helper()
		if got := calls.Load(); got != want {
			t.Fatalf("%s: onChange called %d times, want %d", step, got, want)
		}
		if got := lastRoutable.Load(); got != wantRoutable {
			t.Fatalf("%s: onChange saw %d routable, want %d", step, got, wantRoutable)
		}
	}
	a := g.Add("10.0.0.1:80", &CheckSpec{Rise: 2, Fall: 2}, false)
	g.Add("10.0.0.2:80", nil, false)
	check(0, 0, "Add")

	a.recordCheck(false, "x", clk.Now())
	check(0, 0, "a failure below fall")
	a.recordCheck(false, "x", clk.Now())
	check(1, 1, "unhealthy")
	a.recordCheck(true, "", clk.Now())
	check(1, 1, "a success below rise")
	a.recordCheck(true, "", clk.Now())
	check(2, 2, "healthy")

	for range 5 {
		a.Observe5xx()
	}
	check(3, 1, "ejected")
	clk.Advance(30 * time.Second)
	check(4, 2, "ejection over")

	// Ejecting an unhealthy target does not change its routability.
	a.recordCheck(false, "x", clk.Now())
	a.recordCheck(false, "x", clk.Now())
	check(5, 1, "unhealthy again")
	for range 5 {
		a.Observe5xx()
	}
	clk.Advance(time.Minute)
	check(5, 1, "ejection of an unhealthy target")

	g.Remove("10.0.0.2:80")
	check(5, 1, "Remove")
}

func TestEventsAndLogs(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 0)
	tg := g.Add("10.0.0.1:80", &CheckSpec{Fall: 1}, false)
	tg.recordCheck(false, "GET /healthz: status 503", clk.Now())
	for range 3 {
		tg.ObserveConnectFailure()
	}
	rec.mu.Lock()
	events := slices.Clone(rec.events)
	rec.mu.Unlock()
	want := []Event{
		{Service: "web", Addr: "10.0.0.1:80", Kind: EventUnhealthy, Reason: "GET /healthz: status 503", Time: t0},
		{Service: "web", Addr: "10.0.0.1:80", Kind: EventEjected, Reason: "3 consecutive connect failures; ejected for 30s", Time: t0},
	}
	if !slices.Equal(events, want) {
		t.Fatalf("events\n%+v\nwant\n%+v", events, want)
	}
	logs := rec.logText()
	for _, w := range []string{
		`level=WARN msg="backend unhealthy" service=web addr=10.0.0.1:80 reason="GET /healthz: status 503"`,
		`level=WARN msg="backend ejected" service=web addr=10.0.0.1:80`,
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("logs lack %q:\n%s", w, logs)
		}
	}
}

func TestAddExistingReturnsSameTarget(t *testing.T) {
	g, _, _ := newTestGroup(t, OutlierSpec{}, 0)
	a := g.Add("10.0.0.1:80", nil, false)
	if b := g.Add("10.0.0.1:80", &CheckSpec{}, true); b != a {
		t.Fatal("Add of an existing address returned a new target")
	}
	if got := g.Targets(); len(got) != 1 || got[0].Addr() != "10.0.0.1:80" {
		t.Fatalf("Targets() = %v", got)
	}
}

// fakeProbe stands in for the network: it returns the current result and
// counts calls.
type fakeProbe struct {
	calls atomic.Int32
	fail  atomic.Bool
}

func (p *fakeProbe) probe(context.Context) error {
	p.calls.Add(1)
	if p.fail.Load() {
		return errors.New("GET /: status 503")
	}
	return nil
}

func TestCheckerScheduleWithFakeClock(t *testing.T) {
	g, clk, _ := newTestGroup(t, OutlierSpec{}, 0)
	tg := g.Add("10.0.0.1:80", &CheckSpec{Interval: 10 * time.Second, Timeout: time.Second, Rise: 1, Fall: 2}, true)
	p := &fakeProbe{}
	tg.probe = p.probe
	g.Start(context.Background())

	// The first check runs at once, without any time passing.
	waitFor(t, 5*time.Second, "the first check", func() bool { return p.calls.Load() == 1 && clk.Pending() == 1 })
	if !tg.Status().Healthy {
		t.Fatal("not healthy after the first passing check with rise 1")
	}
	clk.Advance(10*time.Second - time.Nanosecond)
	if got := p.calls.Load(); got != 1 {
		t.Fatalf("%d checks before the interval passed", got)
	}
	p.fail.Store(true)
	for i := int32(2); i <= 3; i++ {
		clk.Advance(10 * time.Second)
		waitFor(t, 5*time.Second, fmt.Sprintf("check %d", i), func() bool { return p.calls.Load() == i && clk.Pending() == 1 })
	}
	st := tg.Status()
	if st.Healthy || st.LastError != "GET /: status 503" || st.ConsecutiveFailures != 2 {
		t.Fatalf("after 2 failures with fall 2: %+v", st)
	}

}

func TestCheckJitter(t *testing.T) {
	spec := &CheckSpec{Interval: 10 * time.Second, Jitter: 5 * time.Second}
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := spec.nextWait()
		if d < 10*time.Second || d >= 15*time.Second {
			t.Fatalf("wait %s outside [interval, interval+jitter)", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct waits in 1000: no jitter", len(seen))
	}
	if d := (&CheckSpec{Interval: time.Second}).nextWait(); d != time.Second {
		t.Fatalf("wait without jitter = %s, want the interval", d)
	}
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := NewGroup("web", OutlierSpec{MaxEjectionPercent: 100}, 0, RealClock(), nil)
	g.SetLogger(discardLogger())
	var ps []*fakeProbe
	for i := range 3 {
		tg := g.Add(fmt.Sprintf("10.0.0.%d:80", i+1), &CheckSpec{Interval: time.Hour, Timeout: time.Second}, false)
		p := &fakeProbe{}
		tg.probe = p.probe
		ps = append(ps, p)
		for range 5 {
			tg.Observe5xx() // arms a real one-minute un-eject timer
		}
	}
	g.Start(context.Background())
	waitFor(t, 5*time.Second, "the first checks", func() bool {
		for _, p := range ps {
			if p.calls.Load() == 0 {
				return false
			}
		}
		return true
	})
	start := time.Now()
	g.Stop()
	g.Stop() // idempotent
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %s although checkers wait an hour", d)
	}
	g.Start(context.Background()) // no effect after Stop
	g.Add("10.0.0.9:80", &CheckSpec{}, false)
}

func TestContextCancelStopsCheckers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	g := NewGroup("web", OutlierSpec{}, 0, RealClock(), nil)
	tg := g.Add("10.0.0.1:80", &CheckSpec{Interval: time.Hour, Timeout: time.Second}, false)
	blocked := make(chan struct{})
	// A check in flight when the context ends does not count.
	tg.probe = func(ctx context.Context) error {
		close(blocked)
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx)
	<-blocked
	cancel()
	g.Stop()
	if st := tg.Status(); !st.Healthy || !st.LastCheck.IsZero() {
		t.Fatalf("an interrupted check was recorded: %+v", st)
	}
}

// TestConcurrentUse hammers a Group on the real clock from many
// goroutines, for the race detector and the max-ejection invariant.
func TestConcurrentUse(t *testing.T) {
	var g *Group
	var tooMany atomic.Int32
	g = NewGroup("web", OutlierSpec{Consecutive5xx: 2, ConsecutiveConnectFailure: 2, BaseEjectionTime: 2 * time.Millisecond, MaxEjectionTime: 10 * time.Millisecond, MaxEjectionPercent: 50}, 50, RealClock(), func() {
		// A consistent view needs the lock: ejections here last
		// milliseconds.
		g.mu.Lock()
		if len(g.targets) == 4 && g.ejectedLocked(g.clock.Now()) > 2 {
			tooMany.Add(1)
		}
		g.mu.Unlock()
		g.Routable()
	})
	g.SetLogger(discardLogger())
	var events atomic.Int32
	g.SetEventFunc(func(Event) { events.Add(1) })
	var ts []*Target
	for i := range 4 {
		tg := g.Add(fmt.Sprintf("10.0.0.%d:80", i+1), &CheckSpec{Interval: time.Millisecond, Timeout: time.Millisecond / 2, Rise: 1, Fall: 1}, false)
		var n atomic.Int32
		tg.probe = func(context.Context) error {
			if n.Add(1)%3 == 0 {
				return errors.New("down")
			}
			return nil
		}
		ts = append(ts, tg)
	}
	g.Start(context.Background())
	stop := make(chan struct{})
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tg := ts[(w+i)%len(ts)]
				switch i % 4 {
				case 0:
					tg.ObserveSuccess()
				case 1:
					tg.Observe5xx()
				case 2:
					tg.ObserveConnectFailure()
				default:
					tg.Status()
					g.Routable()
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	for range 8 {
		<-done
	}
	g.Remove("10.0.0.4:80")
	g.Stop()
	if tooMany.Load() != 0 {
		t.Fatalf("more than 50%% of targets ejected at once, %d times", tooMany.Load())
	}
	if events.Load() == 0 {
		t.Fatal("no events")
	}
	t.Logf("%d events", events.Load())
}

func TestNothingReportedAfterStop(t *testing.T) {
	g, clk, rec := newTestGroup(t, OutlierSpec{MaxEjectionPercent: 100}, 100)
	a := g.Add("10.0.0.1:80", &CheckSpec{Fall: 1}, false)
	g.Stop()
	a.recordCheck(false, "x", clk.Now())
	for range 5 {
		a.Observe5xx()
	}
	g.Add("10.0.0.2:80", &CheckSpec{}, true) // would switch panic mode on
	g.Remove("10.0.0.1:80")
	if ev := rec.kinds(); len(ev) != 0 || rec.changeCount() != 0 || rec.logText() != "" {
		t.Fatalf("reports after Stop: events %q, %d changes, logs %q", ev, rec.changeCount(), rec.logText())
	}
	if st := a.Status(); !st.Healthy || st.Ejected {
		t.Fatalf("state changed after Stop: %+v", st)
	}
}
