package proxy

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPipelinedRequests(t *testing.T) {
	b, _ := echoBackend(t)
	_, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	c.send(t, "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nA"+
		"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nC\r\n0\r\n\r\n")
	for _, want := range []string{"POST A", "GET ", "POST C"} {
		resp, body := c.read(t, false)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
}

func TestForwardedIPv6(t *testing.T) {
	b, last := echoBackend(t)
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	s := NewServer(Config{Director: &staticDirector{ups: []*Upstream{u}}, ForwardedProto: "https"})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	defer func() { s.Shutdown(t.Context()); <-done }()
	c := dialRaw(t, l.Addr().String())
	c.roundTrip(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	h := last()
	if got := h.Get("Forwarded"); got != `for="[::1]";proto=https;host=h` {
		t.Errorf("Forwarded = %q", got)
	}
	if got := h.Get("X-Forwarded-For"); got != "::1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
}

func TestBackendClosesWithoutResponse(t *testing.T) {
	bad := newRawBackend(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool { return false })
	good, _ := echoBackend(t)
	d, addr := proxyTo(t, bad.addr, good.addr)
	d.retry = func(o Outcome) bool { return o.ConnectErr || (o.Err != nil && !o.BodySent) }
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET " {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	p := d.lastPlan()
	waitFor(t, "Done", func() bool { _, _, n := p.result(); return n == 1 })
	if len(p.outcomes) != 1 || p.outcomes[0].Err == nil || p.outcomes[0].ConnectErr || p.outcomes[0].BodySent {
		t.Fatalf("first outcome %+v", p.outcomes)
	}

	// Without a retry: 502 naming the problem.
	d.retry = func(Outcome) bool { return false }
	resp, body = c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "herd: backend "+bad.addr+" failed: connection closed before the response") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if bad.requestCount() != 2 {
		t.Fatalf("bad backend saw %d requests", bad.requestCount())
	}
}

func TestMaxRequests(t *testing.T) {
	u := NewUpstream("127.0.0.1:1", UpstreamOptions{MaxRequests: 1})
	defer u.Close()
	if err := u.begin(); err != nil {
		t.Fatal(err)
	}
	if err := u.begin(); !errors.Is(err, ErrMaxRequests) {
		t.Fatalf("second begin: %v", err)
	}
	u.end()
	if err := u.begin(); err != nil {
		t.Fatal(err)
	}
	u.end()
	if st := u.Stats(); st.InFlight != 0 || st.Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		name, in, body, trailer string
		bad                     bool
	}{
		{name: "simple", in: "3\r\nabc\r\n0\r\n\r\n", body: "abc"},
		{name: "extensions and trailer", in: "3;a=b\r\nabc\r\n1 ;x\r\nd\r\n0\r\nX-T: 1\r\n\r\n", body: "abcd", trailer: "X-T: 1\r\n"},
		{name: "uppercase hex", in: "A\r\n0123456789\r\n0\r\n\r\n", body: "0123456789"},
		{name: "missing final CRLF", in: "3\r\nabc\r\n0\r\n", bad: true},
		{name: "data too long", in: "3\r\nabcd\r\n0\r\n\r\n", bad: true},
		{name: "empty size", in: "\r\nabc\r\n0\r\n\r\n", bad: true},
		{name: "bad trailer", in: "0\r\nbad trailer\r\n\r\n", bad: true},
		{name: "LF only", in: "3\nabc\n0\n\n", bad: true},
		{name: "ctl in extension", in: "3;\x01\r\nabc\r\n0\r\n\r\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cr chunkedReader
			cr.reset(bufio.NewReader(strings.NewReader(tc.in)), 1024)
			got, err := io.ReadAll(&cr)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted, body %q", got)
				}
				return
			}
			if err != nil || string(got) != tc.body || string(cr.trailer) != tc.trailer {
				t.Fatalf("got %q trailer %q err %v", got, cr.trailer, err)
			}
		})
	}
}

func TestDirectorPanicClosesConn(t *testing.T) {
	d := directorFunc(func(r *Request) (Plan, *LocalResponse) {
		if r.Path() == "/panic" {
			panic("boom")
		}
		return nil, &LocalResponse{Status: 404}
	})
	_, addr := startProxy(t, Config{Director: d, Logger: slog.New(slog.DiscardHandler)})
	c := dialRaw(t, addr)
	c.send(t, "GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
	if !c.closed() {
		t.Fatal("connection not closed after a panic")
	}
	c2 := dialRaw(t, addr)
	if resp, _ := c2.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); resp.StatusCode != 404 {
		t.Fatalf("server broken after a panic: %d", resp.StatusCode)
	}
}
