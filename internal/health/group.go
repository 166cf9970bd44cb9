package health

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// EventKind names a health transition.
type EventKind string

// Event kinds.
const (
	// EventHealthy: a target passed Rise active checks in a row.
	EventHealthy EventKind = "healthy"
	// EventUnhealthy: a target failed Fall active checks in a row.
	EventUnhealthy EventKind = "unhealthy"
	// EventEjected: passive outlier detection ejected a target.
	EventEjected EventKind = "ejected"
	// EventUneject: a target's ejection ended.
	EventUneject EventKind = "uneject"
	// EventPanic: too few targets are routable, so Routable returns all.
	EventPanic EventKind = "panic"
	// EventPanicOver: enough targets are routable again.
	EventPanicOver EventKind = "panic_over"
)

// Event is one health transition, reported so that the gateway can count
// them as metrics.
type Event struct {
	// Service is the Group's service.
	Service string
	// Addr is the target's address; empty for panic events.
	Addr string
	// Kind says what happened.
	Kind EventKind
	// Reason explains it, e.g. the failing check's error.
	Reason string
	// Time is when it happened, by the Group's Clock.
	Time time.Time
}

// Group holds the targets of one service. It runs their active checks,
// applies the outlier detection limits that span the service (the
// max-ejection percentage) and the panic threshold, and reports changes.
// Its methods are safe for concurrent use.
type Group struct {
	service      string
	outlier      OutlierSpec // with defaults
	panicPercent int
	clock        Clock
	onChange     func()
	client       *http.Client

	// checkers counts running checker goroutines and timers the un-eject
	// callbacks that may still run; Stop waits for both. Add is called
	// only with mu held and stopped false, so it never races with Wait.
	checkers sync.WaitGroup
	timers   sync.WaitGroup

	// mu guards the fields below and the mutable fields of every Target
	// of the Group; one lock because ejection and panic decisions look at
	// all targets at once.
	mu      sync.Mutex
	logger  *slog.Logger
	onEvent func(Event)
	targets []*Target // in the order added
	byAddr  map[string]*Target
	started bool
	stopped bool
	// runCtx is the context checkers run under, kept from Start so that
	// targets added later get their checker too; cancel ends it.
	runCtx    context.Context
	cancel    context.CancelFunc
	panicking bool // the panic state last reported
}

// NewGroup returns an empty Group for service.
//
// outlier is used with its defaults applied and should have passed
// Validate; out-of-range values are raised to the smallest valid one.
// panicThresholdPercent is the percentage of targets that must be
// routable to avoid panic mode, clamped to 0-100; 0 disables panic mode.
// clock nil means RealClock.
//
// onChange, if not nil, is called whenever what Routable returns changes
// because of an active check, an ejection or its end, or a switch into or
// out of panic mode; Add and Remove do not call it, since their caller
// knows. It is called from any goroutine (a checker, a timer, or the one
// calling an Observe method), never while the Group's lock is held, so it
// may call Routable; it must not block, and must not call Stop.
func NewGroup(service string, outlier OutlierSpec, panicThresholdPercent int, clock Clock, onChange func()) *Group {
	if clock == nil {
		clock = RealClock()
	}
	o := outlier.WithDefaults()
	o.Consecutive5xx = max(o.Consecutive5xx, 1)
	o.ConsecutiveConnectFailure = max(o.ConsecutiveConnectFailure, 1)
	o.BaseEjectionTime = max(o.BaseEjectionTime, time.Millisecond)
	o.MaxEjectionTime = max(o.MaxEjectionTime, o.BaseEjectionTime)
	o.MaxEjectionPercent = min(max(o.MaxEjectionPercent, 1), 100)
	return &Group{
		service:      service,
		outlier:      o,
		panicPercent: min(max(panicThresholdPercent, 0), 100),
		clock:        clock,
		onChange:     onChange,
		client:       newCheckClient(),
		logger:       slog.Default(),
		byAddr:       make(map[string]*Target),
	}
}

// Service returns the name of the Group's service.
func (g *Group) Service() string { return g.service }

// SetLogger sets the logger health transitions are logged to; nil means
// slog.Default(), which is also the initial logger.
func (g *Group) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.Default()
	}
	g.mu.Lock()
	g.logger = l
	g.mu.Unlock()
}

// SetEventFunc sets a function that receives every Event, e.g. to count
// them as metrics; nil turns it off. Like onChange it is called from any
// goroutine without the Group's lock held, and must not block. Events
// from different goroutines may arrive out of order; Event.Time orders
// them.
func (g *Group) SetEventFunc(fn func(Event)) {
	g.mu.Lock()
	g.onEvent = fn
	g.mu.Unlock()
}

// Add adds the backend at addr (host:port) to the Group and returns its
// Target. If addr is already in the Group, Add returns the existing
// Target unchanged; to change its check, Remove it first.
//
// check nil means no active check: the target counts as healthy and only
// passive outlier detection applies. Otherwise the check is used with its
// defaults applied and should have passed Validate. A new target is
// healthy, unless requireHealthyFirst is set (ignored without a check):
// then it is unhealthy until Rise checks in a row have passed. If the
// Group is started, the target's first check runs at once; otherwise it
// runs when Start is called.
func (g *Group) Add(addr string, check *CheckSpec, requireHealthyFirst bool) *Target {
	g.mu.Lock()
	if t, ok := g.byAddr[addr]; ok {
		g.mu.Unlock()
		return t
	}
	now := g.clock.Now()
	t := &Target{group: g, addr: addr, healthy: true, since: now}
	if check != nil {
		c := check.WithDefaults()
		t.check = &c
		t.probe = g.prober(addr, t.check)
		t.healthy = !requireHealthyFirst
	}
	t.announced = t.healthy
	g.targets = append(g.targets, t)
	g.byAddr[addr] = t
	n := g.notesLocked()
	g.updatePanicLocked(now, &n)
	n.changed = false
	if g.started && !g.stopped {
		g.startCheckerLocked(t)
	}
	g.mu.Unlock()
	g.flush(n)
	return t
}

// Remove takes the backend at addr out of the Group, if it is there, and
// stops its checker without waiting for it (Stop waits for all).
// Observations reported on a removed Target are ignored.
func (g *Group) Remove(addr string) {
	g.mu.Lock()
	t, ok := g.byAddr[addr]
	if !ok {
		g.mu.Unlock()
		return
	}
	delete(g.byAddr, addr)
	for i, p := range g.targets {
		if p == t {
			g.targets = append(g.targets[:i:i], g.targets[i+1:]...)
			break
		}
	}
	t.removed = true
	if t.stopChecker != nil {
		t.stopChecker()
		t.stopChecker = nil
	}
	g.stopUnejectTimerLocked(t)
	n := g.notesLocked()
	g.updatePanicLocked(g.clock.Now(), &n)
	n.changed = false
	g.mu.Unlock()
	g.flush(n)
}

// Targets returns the Group's targets in the order they were added.
func (g *Group) Targets() []*Target {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Target(nil), g.targets...)
}

// Start starts one checker goroutine per target with an active check;
// each runs its first check at once. The checkers stop when ctx is
// cancelled or Stop is called. Only the first call has an effect, and none
// after Stop. Always call Stop when done: it also ends ejection timers and
// waits for everything the Group started.
func (g *Group) Start(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.stopped {
		return
	}
	g.started = true
	g.runCtx, g.cancel = context.WithCancel(ctx)
	for _, t := range g.targets {
		g.startCheckerLocked(t)
	}
}

// Stop stops the checkers and ejection timers and waits for their
// goroutines to return. Afterwards check results and observations are
// ignored and no more callbacks are made. It may be called more than once,
// and without Start.
func (g *Group) Stop() {
	g.mu.Lock()
	if !g.stopped {
		g.stopped = true
		if g.cancel != nil {
			g.cancel()
		}
		for _, t := range g.targets {
			g.stopUnejectTimerLocked(t)
		}
	}
	g.mu.Unlock()
	g.checkers.Wait()
	g.timers.Wait()
	g.client.CloseIdleConnections()
}

// Routable returns the targets that may receive traffic: healthy and not
// ejected. If they are fewer than the panic threshold percentage of all
// targets (and there are targets), it returns all targets instead and
// panicking true: better to try them all than to route to none. The
// slice is the caller's.
func (g *Group) Routable() (targets []*Target, panicking bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	for _, t := range g.targets {
		if t.routableLocked(now) {
			targets = append(targets, t)
		}
	}
	if g.panicFor(len(targets)) {
		return append([]*Target(nil), g.targets...), true
	}
	return targets, false
}

// panicFor reports whether routable of the Group's targets put it into
// panic mode.
func (g *Group) panicFor(routable int) bool {
	total := len(g.targets)
	return total > 0 && routable*100 < g.panicPercent*total
}

// startCheckerLocked starts t's checker if t has a check and the Group is
// running.
func (g *Group) startCheckerLocked(t *Target) {
	if t.check == nil || g.runCtx == nil {
		return
	}
	ctx, cancel := context.WithCancel(g.runCtx)
	t.stopChecker = cancel
	g.checkers.Add(1)
	go func() {
		defer g.checkers.Done()
		defer cancel()
		g.runChecker(ctx, t)
	}()
}

// runChecker checks t at once and then every Interval (plus jitter) until
// ctx ends.
func (g *Group) runChecker(ctx context.Context, t *Target) {
	spec := t.check
	for {
		err := t.probe(ctx)
		if ctx.Err() != nil {
			return // stopped mid-check: the result says nothing about the backend
		}
		reason := ""
		if err != nil {
			reason = err.Error()
		}
		t.recordCheck(err == nil, reason, g.clock.Now())
		timer := g.clock.NewTimer(spec.nextWait())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
}

// nextWait returns the wait before the next check: Interval plus a random
// jitter in [0, Jitter).
func (s *CheckSpec) nextWait() time.Duration {
	if s.Jitter <= 0 {
		return s.Interval
	}
	return s.Interval + rand.N(s.Jitter)
}

// ejectedLocked counts the targets ejected at now.
func (g *Group) ejectedLocked(now time.Time) int {
	n := 0
	for _, t := range g.targets {
		if t.ejectedUntil.After(now) {
			n++
		}
	}
	return n
}

// maxEjectedLocked is how many targets may be ejected at once:
// MaxEjectionPercent of them, rounded down, but at least one.
func (g *Group) maxEjectedLocked() int {
	return max(len(g.targets)*g.outlier.MaxEjectionPercent/100, 1)
}

// eject ejects t, if the max-ejection percentage allows, for reason.
func (g *Group) eject(t *Target, reason string) {
	g.mu.Lock()
	now := g.clock.Now()
	if t.removed || g.stopped {
		t.resetPassive()
		g.mu.Unlock()
		return
	}
	n := g.notesLocked()
	g.settleLocked(t, now, &n)
	switch {
	case t.ejected:
		// Requests that were in flight when it was ejected.
		t.resetPassive()
	case g.ejectedLocked(now) >= g.maxEjectedLocked():
		// Keep the streak: the next failure tries again, and succeeds
		// once another target's ejection has ended.
	default:
		d := t.nextEjectionLocked(now)
		t.ejections++
		t.ejectedUntil = now.Add(d)
		t.ejected = true
		t.ejectGen++
		t.resetPassive()
		g.armUnejectLocked(t, d)
		n.add(Event{Addr: t.addr, Kind: EventEjected, Reason: fmt.Sprintf("%s; ejected for %s", reason, d), Time: now})
	}
	g.afterChangeLocked(t, now, &n)
	g.mu.Unlock()
	g.flush(n)
}

// armUnejectLocked schedules the end of t's current ejection in d.
func (g *Group) armUnejectLocked(t *Target, d time.Duration) {
	gen := t.ejectGen
	g.timers.Add(1)
	t.unejectTimer = g.clock.AfterFunc(d, func() {
		defer g.timers.Done()
		g.unejectDue(t, gen)
	})
}

// stopUnejectTimerLocked cancels t's pending un-eject callback, if any.
func (g *Group) stopUnejectTimerLocked(t *Target) {
	if t.unejectTimer == nil {
		return
	}
	if t.unejectTimer.Stop() {
		g.timers.Done() // the callback, which would have called Done, will not run
	}
	t.unejectTimer = nil
}

// unejectDue runs when ejection number gen of t should have ended.
func (g *Group) unejectDue(t *Target, gen uint64) {
	g.mu.Lock()
	if g.stopped || t.removed || t.ejectGen != gen || t.unejectTimer == nil {
		g.mu.Unlock()
		return
	}
	t.unejectTimer = nil // firing now: not to be stopped
	now := g.clock.Now()
	n := g.notesLocked()
	g.settleLocked(t, now, &n)
	if t.ejected {
		// The clock fired early (not the real or fake clock); wait again.
		g.armUnejectLocked(t, t.ejectedUntil.Sub(now))
	}
	g.afterChangeLocked(t, now, &n)
	g.mu.Unlock()
	g.flush(n)
}

// settleLocked ends t's ejection if its time is up and reports it.
func (g *Group) settleLocked(t *Target, now time.Time, n *notes) {
	if !t.ejected || t.ejectedUntil.After(now) {
		return
	}
	t.ejected = false
	g.stopUnejectTimerLocked(t)
	n.add(Event{Addr: t.addr, Kind: EventUneject, Reason: fmt.Sprintf("ejection %d ended", t.ejections), Time: t.ejectedUntil})
}

// afterChangeLocked settles t's ejection and notes whether t's
// routability or the panic state differ from what was last reported.
func (g *Group) afterChangeLocked(t *Target, now time.Time, n *notes) {
	g.settleLocked(t, now, n)
	if r := t.routableLocked(now); r != t.announced {
		t.announced = r
		n.changed = true
	}
	g.updatePanicLocked(now, n)
}

// updatePanicLocked reports a switch into or out of panic mode.
func (g *Group) updatePanicLocked(now time.Time, n *notes) {
	routable := 0
	for _, t := range g.targets {
		if t.routableLocked(now) {
			routable++
		}
	}
	p := g.panicFor(routable)
	if p == g.panicking {
		return
	}
	g.panicking = p
	n.changed = true
	kind := EventPanicOver
	if p {
		kind = EventPanic
	}
	n.add(Event{Kind: kind, Reason: fmt.Sprintf("%d of %d backends routable, threshold %d%%", routable, len(g.targets), g.panicPercent), Time: now})
}

// notes collects what to report once the Group's lock is released.
type notes struct {
	muted    bool // the Group is stopped: report nothing
	service  string
	logger   *slog.Logger
	onEvent  func(Event)
	onChange func()
	events   []Event
	changed  bool
}

func (g *Group) notesLocked() notes {
	return notes{muted: g.stopped, service: g.service, logger: g.logger, onEvent: g.onEvent, onChange: g.onChange}
}

func (n *notes) add(e Event) {
	if n.muted {
		return
	}
	e.Service = n.service
	n.events = append(n.events, e)
}

// flush logs and reports n. It must be called without the lock held.
func (g *Group) flush(n notes) {
	if n.muted {
		return
	}
	for _, e := range n.events {
		level, msg := slog.LevelInfo, ""
		switch e.Kind {
		case EventHealthy:
			msg = "backend healthy"
		case EventUnhealthy:
			level, msg = slog.LevelWarn, "backend unhealthy"
		case EventEjected:
			level, msg = slog.LevelWarn, "backend ejected"
		case EventUneject:
			msg = "backend ejection ended"
		case EventPanic:
			level, msg = slog.LevelWarn, "too few routable backends: routing to all (panic mode)"
		case EventPanicOver:
			msg = "panic mode over"
		}
		attrs := []any{"service", e.Service}
		if e.Addr != "" {
			attrs = append(attrs, "addr", e.Addr)
		}
		attrs = append(attrs, "reason", e.Reason)
		n.logger.Log(context.Background(), level, msg, attrs...)
		if n.onEvent != nil {
			n.onEvent(e)
		}
	}
	if n.changed && n.onChange != nil {
		n.onChange()
	}
}
