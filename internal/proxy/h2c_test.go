package proxy

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

const fullPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func TestH2CPrefaceHandedOver(t *testing.T) {
	got := make(chan string, 1)
	hook := func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, len(fullPreface)+len("frames"))
		_, err := io.ReadFull(c, b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b)
		io.WriteString(c, "taken")
	}
	_, addr := startProxy(t, Config{Director: &staticDirector{}, H2C: hook})
	c := dialRaw(t, addr)
	c.send(t, fullPreface+"frames")
	select {
	case s := <-got:
		if s != fullPreface+"frames" {
			t.Fatalf("hook read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hook never got the connection")
	}
	b, _ := io.ReadAll(c.br)
	if string(b) != "taken" {
		t.Fatalf("client read %q after the hand-over", b)
	}
}

func TestH2CPrefaceRejectedWithoutHook(t *testing.T) {
	_, addr := startProxy(t, Config{Director: &staticDirector{}})
	c := dialRaw(t, addr)
	resp, _ := c.roundTrip(t, fullPreface)
	if resp.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Fatalf("status %d, want 505", resp.StatusCode)
	}
}

func TestRequestFromHTTP(t *testing.T) {
	hr, _ := http.NewRequest("GET", "http://a.test/p?q=1", nil)
	hr.RequestURI = "/p?q=1"
	hr.Header.Set("X-User", "u1")
	hr.Header.Add("Cookie", "a=1; sid=\"s2\"")
	hr.RemoteAddr = "10.0.0.1:5000"
	r := RequestFromHTTP(hr)
	if r.Method != "GET" || r.Target != "/p?q=1" || r.Path() != "/p" || r.Host != "a.test" || r.RemoteAddr != "10.0.0.1:5000" || r.TLS {
		t.Fatalf("request %+v", r)
	}
	if r.Header("x-user") != "u1" || r.Cookie("sid") != "s2" || r.Cookie("none") != "" {
		t.Fatalf("header %q cookie %q", r.Header("x-user"), r.Cookie("sid"))
	}
}

func TestSetForwardedHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Forwarded-For", "1.2.3.4")
	h.Set("X-Request-Id", "keep")
	id := SetForwardedHeaders(h, "10.0.0.1:5000", "https", "a.test")
	if id != "keep" || h.Get("X-Request-Id") != "keep" {
		t.Errorf("request id %q", id)
	}
	if got := h.Get("X-Forwarded-For"); got != "1.2.3.4, 10.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := h.Get("Forwarded"); got != "for=10.0.0.1;proto=https;host=a.test" {
		t.Errorf("Forwarded = %q", got)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Host") != "a.test" {
		t.Errorf("headers %v", h)
	}
	h2 := http.Header{}
	if id := SetForwardedHeaders(h2, "[::1]:1", "http", ""); id == "" || h2.Get("X-Request-Id") != id {
		t.Errorf("no request id added: %v", h2)
	}
}
