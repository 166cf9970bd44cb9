package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// switchServer is a loopback HTTP backend whose /healthz status and body
// can be changed while it runs.
type switchServer struct {
	*httptest.Server
	status atomic.Int32
	body   atomic.Value // string
	hits   atomic.Int32
}

func newSwitchServer(t *testing.T) *switchServer {
	t.Helper()
	s := &switchServer{}
	s.status.Store(http.StatusOK)
	s.body.Store("ok")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(int(s.status.Load()))
			w.Write([]byte(s.body.Load().(string)))
		case "/host":
			w.Write([]byte("host=" + r.Host))
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *switchServer) addr() string { return strings.TrimPrefix(s.URL, "http://") }

// TestHTTPCheckFallAndRise runs real checks every 50ms against a loopback
// server that turns 503 and back.
func TestHTTPCheckFallAndRise(t *testing.T) {
	srv := newSwitchServer(t)
	rec := &recorder{}
	g := NewGroup("web", OutlierSpec{}, 0, RealClock(), rec.change)
	g.SetLogger(discardLogger())
	const interval = 50 * time.Millisecond
	tg := g.Add(srv.addr(), &CheckSpec{Path: "/healthz", Interval: interval, Timeout: 45 * time.Millisecond, Rise: 2, Fall: 2}, false)
	g.Start(context.Background())
	defer g.Stop()

	waitFor(t, 5*time.Second, "a passing check", func() bool { st := tg.Status(); return st.Healthy && st.ConsecutiveSuccesses >= 1 })
	changes := rec.changeCount()

	srv.status.Store(http.StatusServiceUnavailable)
	start := time.Now()
	// fall × interval, plus a lot of slack for a loaded machine.
	waitFor(t, 5*time.Second, "unhealthy", func() bool { return !tg.Status().Healthy })
	t.Logf("unhealthy %s after the switch", time.Since(start))
	st := tg.Status()
	// On a loaded machine a check may time out instead.
	if st.LastError != "GET /healthz: status 503" && st.LastError != "GET /healthz: timed out after 45ms" {
		t.Errorf("LastError = %q, want status 503", st.LastError)
	}
	if st.ConsecutiveFailures < 2 {
		t.Errorf("unhealthy after %d failures, want fall = 2", st.ConsecutiveFailures)
	}
	if got := rec.changeCount() - changes; got != 1 {
		t.Errorf("onChange called %d times, want 1", got)
	}

	srv.status.Store(http.StatusOK)
	start = time.Now()
	waitFor(t, 5*time.Second, "healthy again", func() bool { return tg.Status().Healthy })
	t.Logf("healthy %s after the switch", time.Since(start))
	if st := tg.Status(); st.ConsecutiveSuccesses < 2 {
		t.Errorf("healthy after %d successes, want rise = 2", st.ConsecutiveSuccesses)
	}
	if got := rec.changeCount() - changes; got != 2 {
		t.Errorf("onChange called %d times, want 2", got)
	}
}

func TestHTTPCheckBodyMatch(t *testing.T) {
	srv := newSwitchServer(t)
	srv.body.Store("starting")
	g := NewGroup("web", OutlierSpec{}, 0, RealClock(), nil)
	g.SetLogger(discardLogger())
	tg := g.Add(srv.addr(), &CheckSpec{Path: "/healthz", BodyMatch: "ready", Interval: 50 * time.Millisecond, Timeout: 45 * time.Millisecond, Rise: 1, Fall: 1}, false)
	g.Start(context.Background())
	defer g.Stop()
	const want = `GET /healthz: body does not contain "ready"`
	waitFor(t, 5*time.Second, "unhealthy for the body", func() bool { st := tg.Status(); return !st.Healthy && st.LastError == want })
	srv.body.Store("all ready")
	waitFor(t, 5*time.Second, "healthy", func() bool { return tg.Status().Healthy })
}

// TestHTTPCheckOutcomes calls the HTTP check directly.
func TestHTTPCheckOutcomes(t *testing.T) {
	srv := newSwitchServer(t)
	client := newCheckClient()
	defer client.CloseIdleConnections()
	for _, tc := range []struct {
		name    string
		spec    CheckSpec
		wantErr string // empty: the check passes
	}{
		{name: "ok", spec: CheckSpec{Path: "/healthz"}},
		{name: "body match", spec: CheckSpec{Path: "/healthz", BodyMatch: "ok"}},
		{name: "not found", spec: CheckSpec{Path: "/missing"}, wantErr: "GET /missing: status 404"},
		{name: "host header", spec: CheckSpec{Path: "/host", Host: "app.example", BodyMatch: "host=app.example"}},
		{name: "redirect not followed, passes 200-399", spec: CheckSpec{Path: "/redirect"}},
		{name: "redirect outside range", spec: CheckSpec{Path: "/redirect", ExpectStatus: [2]int{200, 299}}, wantErr: "GET /redirect: status 302"},
		{name: "timeout", spec: CheckSpec{Path: "/slow", Timeout: 50 * time.Millisecond}, wantErr: "GET /slow: timed out after 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec.WithDefaults()
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			err := httpCheck(context.Background(), client, srv.addr(), &spec)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("check failed: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("check error = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		spec := CheckSpec{Path: "/healthz"}.WithDefaults()
		err := httpCheck(context.Background(), client, closedAddr(t), &spec)
		if err == nil || !strings.HasPrefix(err.Error(), "GET /healthz: dial tcp") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("check error = %v, want a refused dial", err)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed := closedAddr(t)

	if err := tcpCheck(context.Background(), l.Addr().String(), time.Second); err != nil {
		t.Fatalf("check of a listener failed: %v", err)
	}
	err = tcpCheck(context.Background(), closed, time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("check of a closed port = %v, want connection refused", err)
	}

	// The same through a Group: the closed port goes unhealthy with the
	// reason, the listener, added to the running Group, comes up.
	g := NewGroup("db", OutlierSpec{}, 0, RealClock(), nil)
	g.SetLogger(discardLogger())
	spec := &CheckSpec{Type: "tcp", Interval: 50 * time.Millisecond, Timeout: 45 * time.Millisecond, Rise: 1, Fall: 1}
	down := g.Add(closed, spec, false)
	g.Start(context.Background())
	defer g.Stop()
	up := g.Add(l.Addr().String(), spec, true)
	waitFor(t, 5*time.Second, "the closed port unhealthy", func() bool { return !down.Status().Healthy })
	if got := down.Status().LastError; !strings.HasPrefix(got, "dial tcp "+closed) || !strings.Contains(got, "connection refused") {
		t.Errorf("LastError = %q, want a refused dial", got)
	}
	waitFor(t, 5*time.Second, "the listener healthy", func() bool { return up.Status().Healthy })
}

// TestFirstCheckAtStart: with a 10s interval, a target that must pass a
// check first becomes healthy right after Start, not an interval later.
func TestFirstCheckAtStart(t *testing.T) {
	srv := newSwitchServer(t)
	g := NewGroup("web", OutlierSpec{}, 0, RealClock(), nil)
	g.SetLogger(discardLogger())
	tg := g.Add(srv.addr(), &CheckSpec{Path: "/healthz", Interval: 10 * time.Second, Timeout: time.Second, Rise: 1}, true)
	if tg.Status().Healthy {
		t.Fatal("healthy before any check although require_healthy_first")
	}
	start := time.Now()
	g.Start(context.Background())
	waitFor(t, 3*time.Second, "healthy", func() bool { return tg.Status().Healthy })
	t.Logf("healthy %s after Start", time.Since(start))
	g.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Start to Stop took %s", d)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d checks, want 1", got)
	}
}
