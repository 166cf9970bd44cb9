package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backend is a real net/http server on loopback that counts connections
// and requests.
type backend struct {
	*httptest.Server
	addr     string
	accepts  atomic.Int64
	requests atomic.Int64
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	return newBackendCfg(t, h, nil)
}

// newBackendCfg is newBackend with a hook to configure the http.Server.
func newBackendCfg(t *testing.T, h http.HandlerFunc, cfg func(*http.Server)) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		h(w, r)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.accepts.Add(1)
		}
	}
	if cfg != nil {
		cfg(b.Config)
	}
	b.Start()
	b.addr = b.Listener.Addr().String()
	t.Cleanup(b.Close)
	return b
}

// testPlan tries ups in order; retry decides whether attempt n may follow
// prev (default: only after a connect error).
type testPlan struct {
	ups   []*Upstream
	retry func(prev Outcome) bool

	mu       sync.Mutex
	outcomes []Outcome
	final    Outcome
	attempts int
	done     int
}

func (p *testPlan) Next(n int, prev Outcome) (*Upstream, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > 0 {
		p.outcomes = append(p.outcomes, prev)
		retry := p.retry
		if retry == nil {
			retry = func(o Outcome) bool { return o.ConnectErr }
		}
		if !retry(prev) {
			return nil, false
		}
	}
	if n >= len(p.ups) {
		return nil, false
	}
	return p.ups[n], true
}

func (p *testPlan) Done(final Outcome, attempts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.final, p.attempts = final, attempts
	p.done++
}

func (p *testPlan) result() (Outcome, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.final, p.attempts, p.done
}

// directorFunc adapts a function to Director.
type directorFunc func(r *Request) (Plan, *LocalResponse)

func (f directorFunc) Direct(r *Request) (Plan, *LocalResponse) { return f(r) }

// staticDirector sends every request to a fresh testPlan over ups; the last
// plan is kept for inspection.
type staticDirector struct {
	ups   []*Upstream
	retry func(Outcome) bool
	seen  func(r *Request)

	mu   sync.Mutex
	last *testPlan
}

func (d *staticDirector) Direct(r *Request) (Plan, *LocalResponse) {
	if d.seen != nil {
		d.seen(r)
	}
	p := &testPlan{ups: d.ups, retry: d.retry}
	d.mu.Lock()
	d.last = p
	d.mu.Unlock()
	return p, nil
}

func (d *staticDirector) lastPlan() *testPlan {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// startProxy serves cfg on a loopback listener until the test ends.
func startProxy(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, l.Addr().String()
}

// proxyTo starts a proxy whose director sends everything to addrs.
func proxyTo(t *testing.T, addrs ...string) (*staticDirector, string) {
	t.Helper()
	d := &staticDirector{}
	for _, a := range addrs {
		u := NewUpstream(a, UpstreamOptions{})
		t.Cleanup(u.Close)
		d.ups = append(d.ups, u)
	}
	_, addr := startProxy(t, Config{Director: d})
	return d, addr
}

// rawClient is a client conn that writes raw bytes and parses responses.
type rawClient struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// roundTrip sends raw and reads one response (for method HEAD: no body).
func (c *rawClient) roundTrip(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	c.send(t, raw)
	return c.read(t, strings.HasPrefix(raw, "HEAD "))
}

func (c *rawClient) read(t *testing.T, head bool) (*http.Response, string) {
	t.Helper()
	req := &http.Request{Method: "GET"}
	if head {
		req.Method = "HEAD"
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// closed reports whether the server closed the connection (EOF) within 2s.
func (c *rawClient) closed() bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := c.br.ReadByte()
	return err == io.EOF || (err != nil && !isTimeout(err))
}

// waitFor polls cond until it is true or 5s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveTCP listens on loopback and runs handle for each accepted
// connection (closing it afterwards) until the test ends; it returns the
// address.
func serveTCP(tb testing.TB, handle func(c net.Conn)) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	tb.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}
