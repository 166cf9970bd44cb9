package proxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// echoTCP echoes until EOF, then writes "bye" and closes.
func echoTCP(t *testing.T) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		io.Copy(c, c)
		io.WriteString(c, "bye")
	})
}

func TestProxyTCP(t *testing.T) {
	bad := NewUpstream(closedPort(t), UpstreamOptions{})
	good := NewUpstream(echoTCP(t), UpstreamOptions{MaxConns: 10})
	defer bad.Close()
	defer good.Close()
	ups := []*Upstream{bad, good}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	results := make(chan TCPResult, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		results <- ProxyTCP(context.Background(), c, func(n int) (*Upstream, bool) {
			if n >= len(ups) {
				return nil, false
			}
			return ups[n], true
		}, 5*time.Second)
	}()

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hello")
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q %v", buf, err)
	}
	waitFor(t, "tcp session counted", func() bool { return good.Stats().Open == 1 && good.Stats().InFlight == 1 })
	// Half-close: the server sees EOF, and its answer still arrives.
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close: %q %v", rest, err)
	}
	res := <-results
	if res.Attempts != 2 || res.Upstream != good || res.ConnectErr || res.Err != nil || res.BytesIn != 5 || res.BytesOut != 8 {
		t.Fatalf("result %+v", res)
	}
	if st := good.Stats(); st.Open != 0 || st.InFlight != 0 || st.Idle != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProxyTCPIdleTimeout(t *testing.T) {
	up := NewUpstream(echoTCP(t), UpstreamOptions{})
	defer up.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan TCPResult, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		done <- ProxyTCP(context.Background(), c, func(n int) (*Upstream, bool) { return up, n == 0 }, 150*time.Millisecond)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("idle session not closed")
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("closed after %v", el)
	}
}
