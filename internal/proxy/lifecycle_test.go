package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestShutdownWaitsForInFlight(t *testing.T) {
	entered := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, "done")
	})
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{Director: &staticDirector{ups: []*Upstream{u}}})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	idle := dialRaw(t, addr)
	idle.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	busy := dialRaw(t, addr)
	busy.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered

	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("shutdown returned after %v, before the in-flight request ended", el)
	}
	resp, body := busy.read(t, false)
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Fatalf("in-flight response %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if !idle.closed() || !busy.closed() {
		t.Fatal("connections not closed")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if s.ActiveConns() != 0 {
		t.Fatalf("ActiveConns = %d", s.ActiveConns())
	}
}

func TestShutdownForcedAtDeadline(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	s := NewServer(Config{Director: &staticDirector{ups: []*Upstream{u}}})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	c := dialRaw(t, l.Addr().String())
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("forced shutdown took %v", el)
	}
	<-served
}

func TestUpstreamDrain(t *testing.T) {
	entered := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	u := NewUpstream(b.addr, UpstreamOptions{})
	_, addr := startProxy(t, Config{Director: &staticDirector{ups: []*Upstream{u}}})
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	if st := u.Stats(); st.InFlight != 1 {
		t.Fatalf("stats %+v", st)
	}
	start := time.Now()
	if err := u.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("drain returned after %v", el)
	}
	if resp, body := c.read(t, false); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if st := u.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("after drain: %+v", st)
	}
	// New requests fail fast: the plan sees ConnectErr.
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "unavailable") {
		t.Fatalf("after close: %d %q", resp.StatusCode, body)
	}
}

type failPlan struct{ testPlan }

func (p *failPlan) Failure(last Outcome) *LocalResponse {
	if !last.ConnectErr {
		return nil
	}
	return &LocalResponse{Status: 503, Body: "herd: service s: no backend could be reached"}
}

func TestPlanFailureResponse(t *testing.T) {
	u := NewUpstream(closedPort(t), UpstreamOptions{})
	defer u.Close()
	d := directorFunc(func(*Request) (Plan, *LocalResponse) { return &failPlan{testPlan{ups: []*Upstream{u}}}, nil })
	_, addr := startProxy(t, Config{Director: d})
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 503 || body != "herd: service s: no backend could be reached" || resp.Close {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}
