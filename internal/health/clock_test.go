package health

import (
	"fmt"
	"testing"
	"time"
)

func TestFakeClockFiresInOrder(t *testing.T) {
	clk := NewFakeClock(t0)
	var fired []string
	var seen []time.Time
	clk.AfterFunc(3*time.Second, func() { fired = append(fired, "c"); seen = append(seen, clk.Now()) })
	clk.AfterFunc(time.Second, func() {
		fired = append(fired, "a")
		seen = append(seen, clk.Now())
		// Scheduled while firing, due within the same Advance.
		clk.AfterFunc(time.Second, func() { fired = append(fired, "b"); seen = append(seen, clk.Now()) })
	})
	stopped := clk.AfterFunc(2*time.Second, func() { fired = append(fired, "x") })
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}
	timer := clk.NewTimer(5 * time.Second)
	if got := clk.Pending(); got != 3 {
		t.Fatalf("Pending = %d, want 3", got)
	}

	clk.Advance(4 * time.Second)
	if got, want := fmt.Sprint(fired), "[a b c]"; got != want {
		t.Fatalf("fired %s, want %s", got, want)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if !seen[i].Equal(t0.Add(want)) {
			t.Errorf("timer %d saw Now = %s, want t0+%s", i, seen[i], want)
		}
	}
	if got := clk.Now(); !got.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("Now = %s, want t0+4s", got)
	}
	select {
	case <-timer.C():
		t.Fatal("5s timer fired at 4s")
	default:
	}
	clk.Advance(time.Second)
	select {
	case at := <-timer.C():
		if !at.Equal(t0.Add(5 * time.Second)) {
			t.Fatalf("timer sent %s, want t0+5s", at)
		}
	default:
		t.Fatal("5s timer did not fire at 5s")
	}
	if timer.Stop() {
		t.Fatal("Stop of a fired timer returned true")
	}
	if got := clk.Pending(); got != 0 {
		t.Fatalf("Pending = %d, want 0", got)
	}
}

func TestRealClock(t *testing.T) {
	clk := RealClock()
	timer := clk.NewTimer(time.Millisecond)
	select {
	case <-timer.C():
	case <-time.After(5 * time.Second):
		t.Fatal("real timer did not fire")
	}
	done := make(chan struct{})
	clk.AfterFunc(time.Millisecond, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("real AfterFunc did not run")
	}
	if clk.AfterFunc(time.Hour, func() {}).Stop() != true {
		t.Fatal("Stop of a pending real timer returned false")
	}
}
