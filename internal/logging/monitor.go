package logging

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Monitor fans an agent's log records out, as JSON lines, to the readers
// of `herd monitor`, each at its own level. A reader that does not keep
// up loses lines (counted, and told in the stream) rather than slowing
// the agent down.
type Monitor struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// min is the lowest level any subscriber wants (math.MaxInt32 when
	// none), read without the lock on every log call.
	min atomic.Int64
}

// NewMonitor returns a Monitor with no subscribers.
func NewMonitor() *Monitor {
	m := &Monitor{subs: map[*Subscription]struct{}{}}
	m.min.Store(noSubscriber)
	return m
}

const noSubscriber = int64(1 << 30)

// Subscription is one reader's stream of lines.
type Subscription struct {
	// C receives JSON lines (each ends with a newline).
	C       chan []byte
	level   slog.Level
	dropped atomic.Uint64
	m       *Monitor
}

// Dropped is how many lines this reader lost because it fell behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Swap(0) }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.m.mu.Lock()
	delete(s.m.subs, s)
	s.m.recomputeLocked()
	s.m.mu.Unlock()
}

// Subscribe starts a stream of the records at level and above, buffering
// up to buffer lines.
func (m *Monitor) Subscribe(level slog.Level, buffer int) *Subscription {
	s := &Subscription{C: make(chan []byte, buffer), level: level, m: m}
	m.mu.Lock()
	m.subs[s] = struct{}{}
	m.recomputeLocked()
	m.mu.Unlock()
	return s
}

func (m *Monitor) recomputeLocked() {
	lowest := noSubscriber
	for s := range m.subs {
		lowest = min(lowest, int64(s.level))
	}
	m.min.Store(lowest)
}

func (m *Monitor) wants(level slog.Level) bool { return int64(level) >= m.min.Load() }

// publish hands a rendered line at level to every subscriber that wants it.
func (m *Monitor) publish(level slog.Level, line []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		if level < s.level {
			continue
		}
		select {
		case s.C <- bytes.Clone(line):
		default:
			s.dropped.Add(1)
		}
	}
}

// Handler returns a slog.Handler that passes records to next and, while
// anyone subscribes, to the monitor's subscribers as JSON lines.
func (m *Monitor) Handler(next slog.Handler) slog.Handler {
	w := &monitorWriter{m: m}
	return &teeHandler{next: next, json: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}), w: w, m: m}
}

// monitorWriter receives the JSON handler's output for one record at a
// time (the tee handler holds mu around each Handle).
type monitorWriter struct {
	m     *Monitor
	mu    sync.Mutex
	level slog.Level
}

func (w *monitorWriter) Write(p []byte) (int, error) {
	w.m.publish(w.level, p)
	return len(p), nil
}

type teeHandler struct {
	next slog.Handler
	json slog.Handler
	w    *monitorWriter
	m    *Monitor
}

func (h *teeHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level) || h.m.wants(level)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r)
	}
	if h.m.wants(r.Level) {
		h.w.mu.Lock()
		h.w.level = r.Level
		_ = h.json.Handle(ctx, r)
		h.w.mu.Unlock()
	}
	return err
}

func (h *teeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &teeHandler{next: h.next.WithAttrs(attrs), json: h.json.WithAttrs(attrs), w: h.w, m: h.m}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{next: h.next.WithGroup(name), json: h.json.WithGroup(name), w: h.w, m: h.m}
}
