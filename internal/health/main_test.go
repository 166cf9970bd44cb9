package health

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Every Group a test starts is stopped; none may leave a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// recorder collects a Group's events and onChange calls.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changes int
	logs    bytes.Buffer
}

func (r *recorder) event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) change() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes++
}

// kinds returns the kinds of the events so far, as "addr:kind" or "kind"
// for panic events, and forgets them.
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, e := range r.events {
		k := string(e.Kind)
		if e.Addr != "" {
			k = e.Addr + ":" + k
		}
		ks = append(ks, k)
	}
	r.events = nil
	return ks
}

// changeCount returns the number of onChange calls so far.
func (r *recorder) changeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes
}

func (r *recorder) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

// lockedWriter lets the log handler write to the recorder's buffer.
type lockedWriter struct{ r *recorder }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.logs.Write(p)
}

// newTestGroup returns a Group on a FakeClock at t0 whose events, changes
// and logs go to the returned recorder. It is stopped when the test ends.
func newTestGroup(t *testing.T, o OutlierSpec, panicPercent int) (*Group, *FakeClock, *recorder) {
	t.Helper()
	clk := NewFakeClock(t0)
	rec := &recorder{}
	g := NewGroup("web", o, panicPercent, clk, rec.change)
	g.SetEventFunc(rec.event)
	g.SetLogger(slog.New(slog.NewTextHandler(lockedWriter{rec}, nil)))
	t.Cleanup(g.Stop)
	return g, clk, rec
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
