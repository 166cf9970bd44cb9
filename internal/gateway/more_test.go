package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herd-cluster/herd/api"
)

func TestRetryBudgetCapsRetries(t *testing.T) {
	sec := int64(1000)
	var b retryBudget
	b.init(20)
	drain := func() int {
		n := 0
		for b.spend() {
			n++
		}
		return n
	}
	if n := drain(); n != 3 {
		t.Fatalf("a fresh budget allowed %d retries; want 3", n)
	}
	// 100 requests earn 20 retries, but at a low rate at most
	// savedRetries are kept.
	for range 100 {
		b.request(sec)
	}
	if n := drain(); n != savedRetries {
		t.Fatalf("after 100 requests the budget allowed %d retries, want %d (the cap)", n, savedRetries)
	}
	for range 10 {
		b.request(sec)
	}
	if n := drain(); n != 2 {
		t.Fatalf("10 requests at 20%% earned %d retries, want 2", n)
	}
	// A busy second (1,000 requests) raises the ceiling for the next one
	// to that second's earnings: 200 retries can be saved.
	sec++
	for range 1000 {
		b.request(sec)
	}
	sec++
	for range 1000 {
		b.request(sec)
	}
	if n := drain(); n != 200 {
		t.Fatalf("after a busy second the budget held %d retries, want 200", n)
	}
	// After a quiet spell the ceiling falls back.
	sec += 5
	for range 1000 {
		b.request(sec)
	}
	if n := drain(); n != savedRetries {
		t.Fatalf("after a quiet spell the budget held %d retries, want %d", n, savedRetries)
	}
}

// Stopping the gateway lets a request in flight finish.
func TestStopWaitsForRequestsInFlight(t *testing.T) {
	started := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	defer slow.Close()
	g, err := New(Config{HTTP: "127.0.0.1:0", Source: newMemSource(api.Service{Name: "slow", Routes: []api.Route{{PathPrefix: "/"}},
		Backends: []api.Backend{{Address: strings.TrimPrefix(slow.URL, "http://")}}})})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(context.Background())
	<-g.Ready()
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + g.HTTPAddr() + "/")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := <-done; got != "200 finished" {
		t.Fatalf("request in flight during stop got %q", got)
	}
	if _, err := net.DialTimeout("tcp", g.HTTPAddr(), time.Second); err == nil {
		t.Fatal("the listener still accepts after stop")
	}
}

func TestGatewayMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := startBackend(t, "b1")
	g, err := New(Config{HTTP: "127.0.0.1:0", Source: newMemSource(webService(b)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(context.Background())
	defer g.Stop(context.Background())
	<-g.Ready()
	get(t, g, "web.test", "/")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg, "herd_gateway_requests_total", "herd_gateway_backend_responses_total", "herd_gateway_active_connections")
	if err != nil || n < 3 {
		t.Fatalf("gateway request metrics: %d series, %v", n, err)
	}
	// The test client keeps its connection alive: one is open.
	if v := gaugeValue(t, reg, "herd_gateway_active_connections"); v < 1 {
		t.Fatalf("active connections = %v, want at least 1", v)
	}
}

// A WebSocket-style upgrade is tunnelled to the backend and back.
func TestUpgradeIsTunnelled(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	defer ws.Close()
	g := startGateway(t, newMemSource(api.Service{Name: "ws", Routes: []api.Route{{Host: "ws.test"}},
		Backends: []api.Backend{{Address: strings.TrimPrefix(ws.URL, "http://")}}}))
	c, err := net.Dial("tcp", g.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade answer: %v %v", resp, err)
	}
	fmt.Fprint(c, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
}

// gaugeValue reads one gauge from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The series of a removed backend, and of a removed service, go away, so
// that churn does not grow /v1/metrics without bound.
func TestMetricsOfRemovedBackendsAndServicesGo(t *testing.T) {
	reg := prometheus.NewRegistry()
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	src := newMemSource(webService(b1, b2))
	g := startGatewayWith(t, Config{Source: src, Registerer: reg})
	for range 4 {
		get(t, g, "web.test", "/")
	}
	series := func(name, label, value string) int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == label && l.GetValue() == value {
						n++
					}
				}
			}
		}
		return n
	}
	if series("herd_gateway_backend_responses_total", "backend", b2.addr()) == 0 {
		t.Fatal("no series for b2 before its removal")
	}
	src.set(webService(b1))
	waitFor(t, func() bool { return len(g.Services()[0].Backends) == 1 })
	if n := series("herd_gateway_backend_responses_total", "backend", b2.addr()); n != 0 {
		t.Fatalf("%d series left for the removed backend", n)
	}
	if series("herd_gateway_backend_responses_total", "backend", b1.addr()) == 0 {
		t.Fatal("the remaining backend's series went too")
	}
	src.set()
	waitFor(t, func() bool { return len(g.Services()) == 0 })
	if n := series("herd_gateway_requests_total", "service", "web"); n != 0 {
		t.Fatalf("%d series left for the removed service", n)
	}
}
