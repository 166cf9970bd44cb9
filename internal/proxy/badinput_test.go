package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBadInputRejected(t *testing.T) {
	b, _ := echoBackend(t)
	_, addr := proxyTo(t, b.addr)
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{name: "garbage request line", raw: "HELLO\r\n\r\n", status: 400},
		{name: "two spaces", raw: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "missing version", raw: "GET /\r\nHost: a\r\n\r\n", status: 400},
		{name: "lowercase version", raw: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "bad method char", raw: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "HTTP/2.0", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 505},
		{name: "target without slash", raw: "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "star for GET", raw: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "https absolute form", raw: "GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "control char in target", raw: "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "header without colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Bad\r\n\r\n", status: 400},
		{name: "space before colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", status: 400},
		{name: "obs-fold", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", status: 400},
		{name: "NUL in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", status: 400},
		{name: "CR in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", status: 400},
		{name: "empty header name", raw: "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", status: 400},
		{name: "CL and TE", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "differing CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400},
		{name: "CL list", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", status: 400},
		{name: "CL list same", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", status: 400},
		{name: "negative CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400},
		{name: "plus CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", status: 400},
		{name: "hex CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", status: 400},
		{name: "huge CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
		{name: "TE gzip, chunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501},
		{name: "TE chunked, identity", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 501},
		{name: "TE xchunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 501},
		{name: "TE twice", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "no Host in 1.1", raw: "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", status: 400},
		{name: "two Hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
		{name: "Host with space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{name: "bad chunk size", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "negative chunk size", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "chunk size overflow", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000000000005\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "missing CRLF after chunk", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", status: 400},
		{name: "bare LF chunk line", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", status: 400},
		{name: "chunk extension too long", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("e", 2000) + "\r\nhello\r\n0\r\n\r\n", status: 400},
		{name: "header too large", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\n\r\n", status: 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := b.requests.Load()
			c := dialRaw(t, addr)
			c.send(t, tc.raw)
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !resp.Close || !c.closed() {
				t.Error("connection not closed")
			}
			if n := b.requests.Load() - before; n != 0 {
				t.Errorf("backend saw %d requests", n)
			}
		})
	}
}

// A chunked body broken after streaming started (beyond the 64 KiB buffer)
// aborts the upstream connection and closes the client connection.
func TestBadChunkAfterStreaming(t *testing.T) {
	got := make(chan error, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		got <- err
	})
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	_, addr := startProxy(t, Config{Director: &staticDirector{ups: []*Upstream{u}}})
	c := dialRaw(t, addr)
	chunk := strings.Repeat("a", 40<<10)
	c.send(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	for i := 0; i < 3; i++ {
		c.send(t, fmt.Sprintf("%x\r\n%s\r\n", len(chunk), chunk))
	}
	c.send(t, "zz\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("response %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if !c.closed() {
		t.Fatal("client connection not closed")
	}
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("backend read a complete body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("backend connection not aborted")
	}
	waitFor(t, "upstream conn closed", func() bool { return u.Stats().Open == 0 })
}

func TestSlowloris(t *testing.T) {
	b, _ := echoBackend(t)
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	_, addr := startProxy(t, Config{Director: &staticDirector{ups: []*Upstream{u}}, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	c := dialRaw(t, addr)
	start := time.Now()
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	time.Sleep(100 * time.Millisecond)
	c.send(t, "still")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.ReadAll(c.br)
	if el := time.Since(start); err != nil || el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("closed after %v (err %v), want ~300ms", el, err)
	}

	// An idle keep-alive connection closes after IdleTimeout.
	c2 := dialRaw(t, addr)
	c2.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	start = time.Now()
	if !c2.closed() {
		t.Fatal("idle connection not closed")
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("idle conn closed after %v", el)
	}
	if b.requests.Load() != 1 {
		t.Fatalf("backend saw %d requests", b.requests.Load())
	}
}
