package health

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Target is the health of one backend of one service, as judged by active
// checks and passive outlier detection. Targets are made by Group.Add;
// their methods are safe for concurrent use.
type Target struct {
	group *Group
	addr  string
	check *CheckSpec // with defaults; nil when there is no active check
	// probe runs one active check; tests replace it before Start.
	probe func(ctx context.Context) error

	// Passive failure streaks, kept lock-free for the proxy's hot path.
	n5xx      atomic.Int64
	nConnFail atomic.Int64

	// Guarded by group.mu.
	healthy      bool
	since        time.Time
	lastCheck    time.Time
	lastError    string
	successes    int
	failures     int
	ejectedUntil time.Time // end of the current or last ejection
	ejected      bool      // ejected and its end not yet reported
	ejections    int
	multiplier   int    // the last ejection's length in BaseEjectionTimes
	ejectGen     uint64 // tells a stale un-eject callback from the current one
	unejectTimer Timer  // pending end of ejection, nil when none
	announced    bool   // routability last reported through onChange
	removed      bool
	stopChecker  context.CancelFunc // nil when no checker runs
}

// Status is a snapshot of a Target's health.
type Status struct {
	// Healthy is the active checks' verdict; true when there is no active
	// check.
	Healthy bool
	// Ejected says that passive outlier detection has ejected the target,
	// now by the Group's Clock.
	Ejected bool
	// EjectedUntil is when the current or last ejection ends; zero if
	// never ejected.
	EjectedUntil time.Time
	// Ejections is how many times the target has been ejected.
	Ejections int
	// Since is when Healthy last changed, or when the target was added.
	Since time.Time
	// LastCheck is when the last active check ended; zero before one has.
	LastCheck time.Time
	// LastError is the reason the last failing check failed, e.g.
	// "GET /healthz: status 503"; it is kept after checks pass again.
	LastError string
	// ConsecutiveSuccesses and ConsecutiveFailures are the current streak
	// of active check results; one of them is zero.
	ConsecutiveSuccesses, ConsecutiveFailures int
}

// Addr returns the backend's address.
func (t *Target) Addr() string { return t.addr }

// Status returns the target's health now, by the Group's Clock.
func (t *Target) Status() Status {
	g := t.group
	g.mu.Lock()
	defer g.mu.Unlock()
	return Status{
		Healthy:              t.healthy,
		Ejected:              t.ejectedUntil.After(g.clock.Now()),
		EjectedUntil:         t.ejectedUntil,
		Ejections:            t.ejections,
		Since:                t.since,
		LastCheck:            t.lastCheck,
		LastError:            t.lastError,
		ConsecutiveSuccesses: t.successes,
		ConsecutiveFailures:  t.failures,
	}
}

// Routable reports whether the target may receive traffic at now: healthy
// and not ejected. It ignores the Group's panic mode; see Group.Routable.
func (t *Target) Routable(now time.Time) bool {
	t.group.mu.Lock()
	defer t.group.mu.Unlock()
	return t.routableLocked(now)
}

func (t *Target) routableLocked(now time.Time) bool {
	return t.healthy && !t.ejectedUntil.After(now)
}

// ObserveSuccess reports a request or connection that succeeded. It resets
// the passive failure streaks.
func (t *Target) ObserveSuccess() {
	// Load first: on the hot path the streaks are nearly always zero, and
	// a load does not contend for the cache line the way a store does.
	if t.n5xx.Load() != 0 {
		t.n5xx.Store(0)
	}
	if t.nConnFail.Load() != 0 {
		t.nConnFail.Store(0)
	}
}

// Observe5xx reports a 5xx response. Consecutive5xx of them in a row eject
// the target. It resets the connect-failure streak, since the backend did
// answer.
func (t *Target) Observe5xx() {
	o := &t.group.outlier
	if o.Disabled {
		return
	}
	if t.nConnFail.Load() != 0 {
		t.nConnFail.Store(0)
	}
	if t.n5xx.Add(1) >= int64(o.Consecutive5xx) {
		t.group.eject(t, fmt.Sprintf("%d consecutive 5xx responses", o.Consecutive5xx))
	}
}

// ObserveConnectFailure reports a connection that could not be made or
// was reset before a response. ConsecutiveConnectFailure of them in a row
// eject the target. The 5xx streak is left alone.
func (t *Target) ObserveConnectFailure() {
	o := &t.group.outlier
	if o.Disabled {
		return
	}
	if t.nConnFail.Add(1) >= int64(o.ConsecutiveConnectFailure) {
		t.group.eject(t, fmt.Sprintf("%d consecutive connect failures", o.ConsecutiveConnectFailure))
	}
}

func (t *Target) resetPassive() {
	t.n5xx.Store(0)
	t.nConnFail.Store(0)
}

// nextEjectionLocked returns how long an ejection starting at now lasts:
// BaseEjectionTime times the multiplier, capped at MaxEjectionTime. The
// multiplier grows by one per ejection and shrinks by one for every
// MaxEjectionTime spent un-ejected since the last one ended, so a backend
// that failed once long ago is not punished as a repeat offender.
func (t *Target) nextEjectionLocked(now time.Time) time.Duration {
	o := &t.group.outlier
	if t.multiplier > 0 {
		if quiet := now.Sub(t.ejectedUntil); quiet > 0 {
			t.multiplier = max(t.multiplier-int(quiet/o.MaxEjectionTime), 0)
		}
	}
	// Stop growing once at the cap, so that decay takes effect promptly.
	steps := int((o.MaxEjectionTime + o.BaseEjectionTime - 1) / o.BaseEjectionTime)
	t.multiplier = min(t.multiplier+1, steps)
	return min(time.Duration(t.multiplier)*o.BaseEjectionTime, o.MaxEjectionTime)
}

// recordCheck applies one active check result at now: the state machine
// of rise and fall thresholds.
func (t *Target) recordCheck(ok bool, reason string, now time.Time) {
	g := t.group
	g.mu.Lock()
	if t.check == nil || t.removed || g.stopped {
		g.mu.Unlock()
		return
	}
	n := g.notesLocked()
	t.lastCheck = now
	if ok {
		t.successes++
		t.failures = 0
		if !t.healthy && t.successes >= t.check.Rise {
			t.healthy = true
			t.since = now
			n.add(Event{Addr: t.addr, Kind: EventHealthy, Reason: fmt.Sprintf("%d checks in a row passed", t.successes), Time: now})
		}
	} else {
		t.failures++
		t.successes = 0
		t.lastError = reason
		if t.healthy && t.failures >= t.check.Fall {
			t.healthy = false
			t.since = now
			n.add(Event{Addr: t.addr, Kind: EventUnhealthy, Reason: reason, Time: now})
		}
	}
	g.afterChangeLocked(t, now, &n)
	g.mu.Unlock()
	g.flush(n)
}
