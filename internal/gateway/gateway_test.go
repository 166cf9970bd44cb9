package gateway

import (
	"context"
	"fmt"
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

	"github.com/herd-cluster/herd/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memSource is a Source held in memory: tests set the services and the
// gateway's watch sees each change as a new index.
type memSource struct {
	mu      sync.Mutex
	index   uint64
	list    []*api.ServiceEntry
	changed chan struct{}
}

func newMemSource(svcs ...api.Service) *memSource {
	s := &memSource{changed: make(chan struct{})}
	s.set(svcs...)
	return s
}

func (s *memSource) set(svcs ...api.Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
	s.list = nil
	for _, v := range svcs {
		// Stored services are immutable, as in the real state store.
		v.Backends = append([]api.Backend(nil), v.Backends...)
		s.list = append(s.list, &api.ServiceEntry{Service: v, ModifyIndex: s.index})
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *memSource) Services(ctx context.Context, index uint64) ([]*api.ServiceEntry, uint64, error) {
	for {
		s.mu.Lock()
		list, idx, ch := s.list, s.index, s.changed
		s.mu.Unlock()
		if idx != index {
			return list, idx, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// backendServer is a real HTTP backend on loopback that names itself.
type backendServer struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
	fail atomic.Bool // answer 503
}

func startBackend(t *testing.T, name string) *backendServer {
	t.Helper()
	b := &backendServer{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		if b.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backendServer) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func startGateway(t *testing.T, src Source) *Gateway {
	t.Helper()
	return startGatewayWith(t, Config{Source: src})
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

func get(t *testing.T, g *Gateway, host, path string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+g.HTTPAddr()+path, nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func webService(bs ...*backendServer) api.Service {
	s := api.Service{Name: "web", Routes: []api.Route{{Host: "web.test"}}}
	for _, b := range bs {
		s.Backends = append(s.Backends, api.Backend{Address: b.addr()})
	}
	return s
}

func TestRoutesAndBalancesAcrossBackends(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	api1 := startBackend(t, "api")
	apiSvc := api.Service{Name: "api", Routes: []api.Route{{Host: "web.test", PathPrefix: "/api"}},
		Backends: []api.Backend{{Address: api1.addr()}}}
	g := startGateway(t, newMemSource(webService(b1, b2, b3), apiSvc))

	seen := map[string]int{}
	for range 30 {
		code, body, h := get(t, g, "web.test", "/")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		seen[body]++
		if h.Get("X-Seen-XFF") != "127.0.0.1" {
			t.Fatalf("backend saw X-Forwarded-For %q", h.Get("X-Seen-XFF"))
		}
	}
	if seen["b1"] != 10 || seen["b2"] != 10 || seen["b3"] != 10 {
		t.Fatalf("round robin spread %v, want 10 each", seen)
	}
	if code, body, _ := get(t, g, "web.test", "/api/users"); code != 200 || body != "api" {
		t.Fatalf("/api/users went to %d %q, want the api service", code, body)
	}
	if code, body, _ := get(t, g, "web.test", "/apix"); code != 200 || body == "api" {
		t.Fatalf("/apix went to %d %q, want the web service", code, body)
	}
	if code, body, _ := get(t, g, "other.test", "/"); code != 404 || !strings.Contains(body, "no route") {
		t.Fatalf("unknown host: %d %q, want 404", code, body)
	}
}

func TestNoBackendsAnswers503NamingTheService(t *testing.T) {
	empty := api.Service{Name: "empty", Routes: []api.Route{{Host: "empty.test"}}}
	g := startGateway(t, newMemSource(empty))
	code, body, _ := get(t, g, "empty.test", "/")
	if code != 503 || !strings.Contains(body, "empty") {
		t.Fatalf("got %d %q, want 503 naming the service", code, body)
	}
}

func TestAllBackendsDownAnswers503Promptly(t *testing.T) {
	dead := closedAddr(t)
	svc := api.Service{Name: "gone", Routes: []api.Route{{Host: "gone.test"}}, Backends: []api.Backend{{Address: dead}}}
	g := startGateway(t, newMemSource(svc))
	start := time.Now()
	code, body, _ := get(t, g, "gone.test", "/")
	if code != 503 || !strings.Contains(body, "service gone") {
		t.Fatalf("got %d %q, want 503 naming the service", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s, want within the connect timeout", d)
	}
}

// A backend that starts failing is ejected (passive) and the others
// take its traffic; GETs are retried on another backend, so clients see
// no error.
func TestFailingBackendIsRetriedAndEjected(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	svc := webService(b1, b2, b3)
	svc.OutlierDetection = &api.OutlierDetection{Consecutive5xx: 3, BaseEjectionTime: api.Duration(time.Minute)}
	g := startGateway(t, newMemSource(svc))
	b2.fail.Store(true)
	for i := range 60 {
		code, body, _ := get(t, g, "web.test", "/")
		if code != 200 {
			t.Fatalf("request %d: %d %q; want every GET retried to a healthy backend", i, code, body)
		}
	}
	st := g.Services()
	if len(st) != 1 {
		t.Fatalf("status: %+v", st)
	}
	var b2st api.BackendStatus
	for _, b := range st[0].Backends {
		if b.Address == b2.addr() {
			b2st = b
		}
	}
	if !b2st.Ejected || b2st.Health != "ejected" {
		t.Fatalf("failing backend not ejected: %+v", b2st)
	}
	before := b2.hits.Load()
	for range 20 {
		get(t, g, "web.test", "/")
	}
	if after := b2.hits.Load(); after != before {
		t.Fatalf("ejected backend still got %d requests", after-before)
	}
}

// A killed backend: active checks take it out within fall x interval,
// and not one GET fails meanwhile, thanks to connect-failure retries.
func TestKilledBackendUnderLoadFailsNoGET(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	svc := webService(b1, b2, b3)
	const interval, rise, fall = 100 * time.Millisecond, 2, 2
	svc.HealthCheck = &api.HealthCheck{Path: "/", Interval: api.Duration(interval), Timeout: api.Duration(50 * time.Millisecond), Rise: rise, Fall: fall}
	// Active checks alone decide here (passive ejection would take it out
	// even sooner, for 30 s). Until they do, a third of the requests need
	// a retry: more than the default budget of 20 % allows.
	svc.OutlierDetection = &api.OutlierDetection{Disabled: true}
	svc.Retry = &api.Retry{BudgetPercent: 50}
	g := startGateway(t, newMemSource(svc))
	health := func() string {
		for _, b := range g.Services()[0].Backends {
			if b.Address == b2.addr() {
				return b.Health
			}
		}
		return ""
	}
	// waitHealth allows fall (or rise) intervals plus a generous slack for
	// a loaded machine.
	waitHealth := func(want string, checks int) time.Duration {
		start := time.Now()
		limit := time.Duration(checks)*interval + 900*time.Millisecond
		for health() != want {
			if time.Since(start) > limit {
				t.Fatalf("backend still %q %s later, want %q within %d checks", health(), limit, want, checks)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}

	stopLoad := startLoad(t, g, "web.test")
	time.Sleep(300 * time.Millisecond)
	addr := b2.addr()
	b2.srv.CloseClientConnections()
	b2.srv.Close()
	t.Logf("killed backend marked unhealthy after %s", waitHealth("unhealthy", fall).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	ok, failed := stopLoad()
	if failed != 0 {
		t.Fatalf("%d of %d GETs failed while a backend died", failed, failed+ok)
	}
	if ok < 50 {
		t.Fatalf("only %d requests ran", ok)
	}

	// The backend comes back on the same address: healthy after rise
	// passes, and it gets traffic again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	back := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b2-again") })}
	go back.Serve(ln)
	defer back.Close()
	t.Logf("restarted backend healthy after %s", waitHealth("healthy", rise).Round(time.Millisecond))
	seen := false
	for range 9 {
		if _, body, _ := get(t, g, "web.test", "/"); body == "b2-again" {
			seen = true
		}
	}
	if !seen {
		t.Fatal("the recovered backend got no traffic")
	}
}

// With the defaults (passive ejection on, a 20 % retry budget) a killed
// backend costs no GET either: three failed connections eject it.
func TestKilledBackendWithDefaultsFailsNoGET(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	g := startGateway(t, newMemSource(webService(b1, b2, b3)))
	stopLoad := startLoad(t, g, "web.test")
	time.Sleep(300 * time.Millisecond)
	b2.srv.CloseClientConnections()
	b2.srv.Close()
	waitFor(t, func() bool { return g.Services()[0].Backends[1].Health == "ejected" })
	time.Sleep(300 * time.Millisecond)
	ok, failed := stopLoad()
	if failed != 0 || ok < 50 {
		t.Fatalf("%d of %d GETs failed while a backend died", failed, failed+ok)
	}
}

// Services change under load (backends added, removed, drained, routes
// swapped) and not one request fails.
func TestConfigChangesUnderLoadFailNothing(t *testing.T) {
	bs := []*backendServer{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3"), startBackend(t, "b4")}
	src := newMemSource(webService(bs[0], bs[1]))
	g := startGateway(t, src)
	stopLoad := startLoad(t, g, "web.test")
	steps := [][]*backendServer{{bs[0], bs[1], bs[2]}, {bs[2], bs[3]}, {bs[1]}, {bs[0], bs[1], bs[2], bs[3]}, {bs[3]}}
	for i := range 20 {
		svc := webService(steps[i%len(steps)]...)
		if i%3 == 1 {
			svc.Algorithm = "least_request"
		}
		if i%4 == 2 && len(svc.Backends) > 1 {
			svc.Backends[0].Drain = true
		}
		src.set(svc)
		time.Sleep(30 * time.Millisecond)
	}
	ok, failed := stopLoad()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during config changes", failed, failed+ok)
	}
	if ok < 50 {
		t.Fatalf("only %d requests ran", ok)
	}
}

func TestDrainedBackendGetsNoNewRequests(t *testing.T) {
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	svc := webService(b1, b2)
	src := newMemSource(svc)
	g := startGateway(t, src)
	svc.Backends[1].Drain = true
	src.set(svc)
	waitFor(t, func() bool { return g.Services()[0].Backends[1].Health == "draining" })
	before := b2.hits.Load()
	for range 10 {
		if code, body, _ := get(t, g, "web.test", "/"); code != 200 || body != "b1" {
			t.Fatalf("got %d %q, want b1", code, body)
		}
	}
	if b2.hits.Load() != before {
		t.Fatal("drained backend got requests")
	}
}

func TestTCPRoute(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	port := pl.Addr().(*net.TCPAddr).Port
	pl.Close()
	src := newMemSource(api.Service{Name: "echo", Protocol: "tcp", Routes: []api.Route{{Port: port}}, Backends: []api.Backend{{Address: echo.Addr().String()}}})
	g, err := New(Config{TCPPorts: []int{port}, TCPHost: "127.0.0.1", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(context.Background())
	defer g.Stop(context.Background())
	<-g.Ready()
	c, err := net.Dial("tcp", g.TCPAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "ping")
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo through the gateway: %q, %v", got, err)
	}
}

// startLoad sends GETs for host through g from 4 goroutines until the
// returned function is called; it reports the answers that were 200 and
// those that were not (or failed), logging the first few failures.
func startLoad(t *testing.T, g *Gateway, host string) func() (ok, failed int64) {
	var okN, failedN atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	fail := func(what string) {
		if failedN.Add(1) <= 3 {
			t.Logf("failed request: %s", what)
		}
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+g.HTTPAddr()+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	return func() (int64, int64) {
		close(stop)
		wg.Wait()
		return okN.Load(), failedN.Load()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A service rebuilt with unchanged health settings keeps its health group;
// the group's verdicts must then steer the new service's routing. Before
// the fix they went to the retired service, and a backend that died after
// any such change kept getting traffic.
func TestHealthChangesReachARebuiltService(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	svc := webService(b1, b2)
	svc.HealthCheck = &api.HealthCheck{Path: "/", Interval: api.Duration(50 * time.Millisecond), Timeout: api.Duration(25 * time.Millisecond), Fall: 1, Rise: 1}
	svc.OutlierDetection = &api.OutlierDetection{Disabled: true}
	svc.Retry = &api.Retry{Attempts: 1}
	src := newMemSource(svc)
	g := startGateway(t, src)
	// Rebuild: a third backend, same checks.
	svc3 := svc
	svc3.Backends = append(append([]api.Backend(nil), svc.Backends...), api.Backend{Address: b3.addr()})
	src.set(svc3)
	waitFor(t, func() bool { // the third backend takes traffic
		_, body, _ := get(t, g, "web.test", "/")
		return body == "b3"
	})
	// b2 goes bad: the active check must take it out of the new routing.
	b2.fail.Store(true)
	waitFor(t, func() bool { // b2 is taken out
		for _, s := range g.Services() {
			for _, b := range s.Backends {
				if b.Address == b2.addr() && !b.Healthy {
					return true
				}
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond)
	before := b2.hits.Load()
	for i := range 30 {
		if code, body, _ := get(t, g, "web.test", "/"); code != 200 {
			t.Fatalf("request %d: %d %q: the unhealthy backend still gets traffic", i, code, body)
		}
	}
	// Only health checks may reach b2 now (one every 50 ms).
	if got := b2.hits.Load() - before; got > 10 {
		t.Fatalf("unhealthy b2 got %d hits during 30 requests", got)
	}
}
