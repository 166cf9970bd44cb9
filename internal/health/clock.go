package health

import (
	"sort"
	"sync"
	"time"
)

// Clock is the source of time for checks and ejections, so that tests can
// control it. Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has passed.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f once d has passed, unless the returned timer is
	// stopped first; RealClock calls it in its own goroutine, FakeClock
	// inside Advance. Its timer's C is nil.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single-shot timer made by a Clock.
type Timer interface {
	// C returns the channel the time is sent on; nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it did so,
	// false meaning the timer had already fired or been stopped; for an
	// AfterFunc timer false means the function has been started.
	Stop() bool
}

// RealClock returns the Clock backed by package time.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// FakeClock is a Clock whose time moves only when Advance is called. It is
// meant for tests, here and in packages that use this one. It is safe for
// concurrent use.
type FakeClock struct {
	mu sync.Mutex
	// Guarded by mu.
	now    time.Time
	timers []*fakeTimer // pending, in no particular order
	seq    uint64       // orders timers that are due at the same time
}

// NewFakeClock returns a FakeClock that reads start until advanced.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the fake current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when Advance reaches now+d. A timer
// with d <= 0 fires on the next Advance, even Advance(0).
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	return c.add(d, make(chan time.Time, 1), nil)
}

// AfterFunc returns a timer that calls f when Advance reaches now+d. Unlike
// the real clock, f runs synchronously inside Advance, so its effects are
// visible when Advance returns; Advance must therefore not be called while
// holding a lock that f takes. A timer with d <= 0 fires on the next
// Advance.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	return c.add(d, nil, f)
}

func (c *FakeClock) add(d time.Duration, ch chan time.Time, f func()) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{clock: c, when: c.now.Add(d), seq: c.seq, ch: ch, fn: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the time forward by d and fires, in time order, every
// timer due by then. While a timer fires, Now reads the time it was due,
// and timers it schedules fire in the same call if they fall due by the
// end of d. Channel timers are sent to without blocking (the channel has a
// buffer of one), so the goroutine waiting on one may run after Advance
// returns.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool {
			a, b := c.timers[i], c.timers[j]
			if !a.when.Equal(b.when) {
				return a.when.Before(b.when)
			}
			return a.seq < b.seq
		})
		if len(c.timers) == 0 || c.timers[0].when.After(end) {
			if end.After(c.now) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		if t.when.After(c.now) {
			c.now = t.when
		}
		now := c.now
		c.mu.Unlock()
		if t.fn != nil {
			t.fn()
		} else {
			select {
			case t.ch <- now:
			default:
			}
		}
	}
}

// Pending returns how many timers are waiting to fire. Tests poll it to
// know that a goroutine has armed its timer before they Advance.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	clock *FakeClock
	when  time.Time
	seq   uint64
	ch    chan time.Time
	fn    func()
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.timers {
		if p == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}
