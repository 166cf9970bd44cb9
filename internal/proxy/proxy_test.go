package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoBackend answers with the method, the received body and, in headers,
// what it saw; it remembers the last request header.
func echoBackend(t *testing.T) (*backend, func() http.Header) {
	return echoBackendCfg(t, nil)
}

func echoBackendCfg(t *testing.T, cfg func(*http.Server)) (*backend, func() http.Header) {
	var mu sync.Mutex
	var last http.Header
	b := newBackendCfg(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = r.Header.Clone()
		last.Set("X-Seen-Host", r.Host)
		last.Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		last.Set("X-Seen-URI", r.RequestURI)
		mu.Unlock()
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
			return
		case "/304":
			w.WriteHeader(304)
			return
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("Content-Length", strconv.Itoa(len(r.Method)+1+len(body)))
		fmt.Fprintf(w, "%s %s", r.Method, body)
	}, cfg)
	return b, func() http.Header {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func TestForwardMethodsAndBodies(t *testing.T) {
	b, _ := echoBackend(t)
	_, addr := proxyTo(t, b.addr)
	big := strings.Repeat("x", 100<<10)
	tests := []struct {
		name     string
		raw      string
		status   int
		wantBody string
	}{
		{name: "GET", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, wantBody: "GET "},
		{name: "POST content-length", raw: "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", status: 200, wantBody: "POST hello"},
		{name: "POST chunked", raw: "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n", status: 200, wantBody: "POST hello"},
		{name: "POST large content-length", raw: "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, status: 200, wantBody: "POST " + big},
		{name: "POST large chunked", raw: "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big, 3, "end"), status: 200, wantBody: "POST " + big + "end"},
		{name: "HEAD", raw: "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", status: 200, wantBody: ""},
		{name: "204", raw: "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n", status: 204},
		{name: "304", raw: "GET /304 HTTP/1.1\r\nHost: a\r\n\r\n", status: 304},
		{name: "expect 100-continue", raw: "PUT /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", status: 200, wantBody: "PUT ok"},
	}
	c := dialRaw(t, addr) // all on one keep-alive connection
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.roundTrip(t, tc.raw)
			if resp.StatusCode == 100 {
				resp, body = c.read(t, false)
			}
			if resp.StatusCode != tc.status || body != tc.wantBody {
				t.Fatalf("got %d %.40q, want %d %.40q", resp.StatusCode, body, tc.status, tc.wantBody)
			}
			if resp.Close {
				t.Fatal("connection closed")
			}
		})
	}
}

func TestForwardHeaders(t *testing.T) {
	b, last := echoBackend(t)
	_, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	resp, _ := c.roundTrip(t, "GET /x?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"+
		"Connection: keep-alive, X-Hop\r\nX-Hop: drop me\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\n"+
		"Upgrade: h2c\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: evil\r\nForwarded: for=10.0.0.1\r\n"+
		"X-Request-Id: abc-123\r\nX-Keep: yes\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := last()
	want := map[string]string{
		"X-Seen-Host":       "example.com:8080",
		"X-Seen-URI":        "/x?q=1",
		"X-Keep":            "yes",
		"X-Forwarded-For":   "10.0.0.1, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "example.com:8080",
		"Forwarded":         `for=10.0.0.1, for=127.0.0.1;proto=http;host="example.com:8080"`,
		"X-Request-Id":      "abc-123",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Connection"} {
		if v, ok := h[k]; ok {
			t.Errorf("hop-by-hop %s forwarded: %q", k, v)
		}
	}

	// Absolute form and a generated request id.
	resp, _ = c.roundTrip(t, "GET http://abs.example/p HTTP/1.1\r\nHost: other\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h = last()
	if h.Get("X-Seen-Host") != "abs.example" || h.Get("X-Seen-URI") != "/p" {
		t.Errorf("absolute form: host %q uri %q", h.Get("X-Seen-Host"), h.Get("X-Seen-URI"))
	}
	id1 := h.Get("X-Request-Id")
	c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	id2 := last().Get("X-Request-Id")
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Errorf("generated request ids %q, %q", id1, id2)
	}
	if last().Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", last().Get("X-Forwarded-For"))
	}
}

// rawBackend serves each connection with fn (after reading one request
// header with net/http), counting requests.
type rawBackend struct {
	l        net.Listener
	addr     string
	requests sync.WaitGroup
	mu       sync.Mutex
	count    int
	wg       sync.WaitGroup
}

func newRawBackend(t *testing.T, fn func(c net.Conn, br *bufio.Reader, r *http.Request) bool) *rawBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{l: l, addr: l.Addr().String()}
	var conns sync.Map
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b.mu.Lock()
					b.count++
					b.mu.Unlock()
					if !fn(c, br, r) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		b.wg.Wait()
	})
	return b
}

func (b *rawBackend) requestCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

func TestResponseFramingAndHopByHop(t *testing.T) {
	tests := []struct {
		name      string
		resp      string
		keepUp    bool
		wantBody  string
		wantClose bool
		wantChunk bool
	}{
		{name: "content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n\r\nabc", keepUp: true, wantBody: "abc"},
		{name: "chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\nX-T: 1\r\n\r\n", keepUp: true, wantBody: "abc", wantChunk: true},
		{name: "close-delimited", resp: "HTTP/1.1 200 OK\r\n\r\nabc", wantBody: "abc", wantClose: true},
		{name: "http/1.0 backend", resp: "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", wantBody: "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rb := newRawBackend(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool {
				io.WriteString(c, tc.resp)
				return tc.keepUp
			})
			_, addr := proxyTo(t, rb.addr)
			c := dialRaw(t, addr)
			resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp.StatusCode != 200 || body != tc.wantBody {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if resp.Close != tc.wantClose {
				t.Errorf("Close = %v, want %v", resp.Close, tc.wantClose)
			}
			if (len(resp.TransferEncoding) > 0) != tc.wantChunk {
				t.Errorf("TransferEncoding = %v", resp.TransferEncoding)
			}
			if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
				t.Errorf("hop-by-hop response headers forwarded: %v", resp.Header)
			}
			if tc.wantClose {
				if !c.closed() {
					t.Error("client connection not closed after close-delimited body")
				}
				return
			}
			resp, body = c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp.StatusCode != 200 || body != tc.wantBody {
				t.Fatalf("second request: %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestHTTP10Client(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
		return true
	})
	b, _ := echoBackend(t)
	_, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET " || resp.Close {
		t.Fatalf("keep-alive 1.0: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	resp, _ = c.roundTrip(t, "GET / HTTP/1.0\r\n\r\n")
	if !resp.Close || !c.closed() {
		t.Fatal("HTTP/1.0 without keep-alive: connection not closed")
	}

	// A chunked response is de-chunked for an HTTP/1.0 client.
	_, addr2 := proxyTo(t, rb.addr)
	c2 := dialRaw(t, addr2)
	c2.send(t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	all, _ := io.ReadAll(c2.br)
	if !bytes.HasSuffix(all, []byte("\r\n\r\nabc")) || bytes.Contains(all, []byte("chunked")) {
		t.Fatalf("de-chunked response: %q", all)
	}
}

func TestLargeResponseStreamed(t *testing.T) {
	const size = 5 << 20
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Write(payload) // no Content-Length: chunked
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		w.Write(payload)
	})
	_, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	for _, p := range []string{"/", "/chunked", "/"} {
		resp, body := c.roundTrip(t, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 200 || body != string(payload) {
			t.Fatalf("%s: status %d, %d bytes", p, resp.StatusCode, len(body))
		}
	}
}

func TestKeepAliveReusesUpstreamConns(t *testing.T) {
	b, _ := echoBackend(t)
	d, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	for i := 0; i < 1000; i++ {
		resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := b.accepts.Load(); n > 3 {
		t.Fatalf("backend accepted %d connections for 1000 sequential requests", n)
	}
	if st := d.ups[0].Stats(); st.Requests != 1000 || st.Idle != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStalePooledConnRetried(t *testing.T) {
	b, _ := echoBackendCfg(t, func(s *http.Server) { s.IdleTimeout = 50 * time.Millisecond })
	d, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	for i := 0; i < 3; i++ {
		resp, _ := c.roundTrip(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		time.Sleep(150 * time.Millisecond) // the backend closes the idle conn
		p := d.lastPlan()
		waitFor(t, "Done", func() bool { _, _, done := p.result(); return done == 1 })
		if _, attempts, _ := p.result(); attempts != 1 || len(p.outcomes) != 0 {
			t.Fatalf("plan saw %d attempts, outcomes %v", attempts, p.outcomes)
		}
	}
	if n := b.accepts.Load(); n != 3 {
		t.Errorf("backend accepts = %d, want 3", n)
	}
}

func TestRetryConnectRefused(t *testing.T) {
	b, _ := echoBackend(t)
	d, addr := proxyTo(t, closedPort(t), b.addr)
	c := dialRaw(t, addr)
	resp, _ := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := d.lastPlan()
	waitFor(t, "Done", func() bool { _, _, done := p.result(); return done == 1 })
	final, attempts, done := p.result()
	if attempts != 2 || done != 1 || final.Status != 200 || final.Upstream != d.ups[1] {
		t.Fatalf("attempts %d done %d final %+v", attempts, done, final)
	}
	if len(p.outcomes) != 1 || !p.outcomes[0].ConnectErr {
		t.Fatalf("first outcome %+v", p.outcomes)
	}
}

func TestAllRefused502(t *testing.T) {
	bad := closedPort(t)
	_, addr := proxyTo(t, bad)
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "herd: backend "+bad+" refused the connection") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestRetry5xx(t *testing.T) {
	bad := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(503)
		io.WriteString(w, "down")
	})
	good, _ := echoBackend(t)
	d, addr := proxyTo(t, bad.addr, good.addr)
	d.retry = func(o Outcome) bool { return o.ConnectErr || o.Status >= 500 }
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
	if resp.StatusCode != 200 || body != "POST abc" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	waitFor(t, "Done", func() bool { _, _, done := d.lastPlan().result(); return done == 1 })
	final, attempts, _ := d.lastPlan().result()
	if attempts != 2 || final.Status != 200 {
		t.Fatalf("attempts %d final %+v", attempts, final)
	}

	// When the plan does not retry, the 5xx is forwarded.
	d.retry = func(o Outcome) bool { return o.ConnectErr }
	resp, body = c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 503 || body != "down" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestStreamedBodyReportsBodySent(t *testing.T) {
	// The backend reads the body, then resets the connection without answering.
	rb := newRawBackend(t, func(c net.Conn, _ *bufio.Reader, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		return false
	})
	d, addr := proxyTo(t, rb.addr, rb.addr)
	d.retry = func(Outcome) bool { return true }
	c := dialRaw(t, addr)
	big := strings.Repeat("y", 70<<10)
	resp, _ := c.roundTrip(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitFor(t, "Done", func() bool { _, _, done := d.lastPlan().result(); return done == 1 })
	final, attempts, _ := d.lastPlan().result()
	if !final.BodySent || attempts != 1 || final.Err == nil {
		t.Fatalf("attempts %d final %+v", attempts, final)
	}
}

func TestPerTryTimeout504(t *testing.T) {
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	u := NewUpstream(b.addr, UpstreamOptions{ResponseTimeout: 100 * time.Millisecond})
	defer u.Close()
	d := &staticDirector{ups: []*Upstream{u}}
	_, addr := startProxy(t, Config{Director: d})
	c := dialRaw(t, addr)
	start := time.Now()
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 504 || !strings.Contains(body, "timed out") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
	waitFor(t, "Done", func() bool { _, _, done := d.lastPlan().result(); return done == 1 })
	final, _, _ := d.lastPlan().result()
	if !final.Timeout {
		t.Fatalf("final %+v", final)
	}
	if st := u.Stats(); st.Idle != 0 {
		t.Fatalf("timed-out conn pooled: %+v", st)
	}
}

func TestCircuitBreakerMaxConns(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
	for _, pending := range []int{0, 1} {
		t.Run(fmt.Sprintf("pending=%d", pending), func(t *testing.T) {
			u := NewUpstream(b.addr, UpstreamOptions{MaxConns: 1, MaxPending: pending})
			defer u.Close()
			d := &staticDirector{ups: []*Upstream{u}}
			_, addr := startProxy(t, Config{Director: d})
			c1 := dialRaw(t, addr)
			c1.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			<-entered
			c2 := dialRaw(t, addr)
			c2.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			if pending == 0 {
				resp, body := c2.read(t, false)
				if resp.StatusCode != 503 || !strings.Contains(body, "circuit breaker: max connections") {
					t.Fatalf("second request: %d %q", resp.StatusCode, body)
				}
				release <- struct{}{}
				if resp, _ := c1.read(t, false); resp.StatusCode != 200 {
					t.Fatalf("first request: %d", resp.StatusCode)
				}
				return
			}
			time.Sleep(50 * time.Millisecond) // c2 waits for the connection
			release <- struct{}{}
			if resp, _ := c1.read(t, false); resp.StatusCode != 200 {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			<-entered
			release <- struct{}{}
			if resp, _ := c2.read(t, false); resp.StatusCode != 200 {
				t.Fatalf("second request: %d", resp.StatusCode)
			}
			if st := u.Stats(); st.Open != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestUpgradeTunnel(t *testing.T) {
	rb := newRawBackend(t, func(c net.Conn, br *bufio.Reader, r *http.Request) bool {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return true
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, br) // echo
		return false
	})
	_, addr := proxyTo(t, rb.addr)
	c := dialRaw(t, addr)
	c.send(t, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	for _, msg := range []string{"ping", "hello world", strings.Repeat("z", 100000)} {
		c.send(t, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %v (%d bytes)", err, len(got))
		}
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	if !c.closed() {
		t.Fatal("tunnel not closed after client half-close")
	}
}

func TestStreamingResponseFlushed(t *testing.T) {
	second := make(chan time.Time, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		time.Sleep(200 * time.Millisecond)
		second <- time.Now()
		io.WriteString(w, "second\n")
	})
	_, addr := proxyTo(t, b.addr)
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	got := time.Now()
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	select {
	case <-second:
		t.Fatal("first chunk arrived only after the second was written")
	default:
	}
	if sent := <-second; !got.Before(sent) {
		t.Fatal("first chunk not flushed promptly")
	}
}

func TestLocalResponse(t *testing.T) {
	d := directorFunc(func(r *Request) (Plan, *LocalResponse) {
		return nil, &LocalResponse{Status: 404, Body: "herd: no route for " + r.Host, Header: [][2]string{{"X-Herd", "1"}}}
	})
	_, addr := startProxy(t, Config{Director: d})
	c := dialRaw(t, addr)
	resp, body := c.roundTrip(t, "GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n")
	if resp.StatusCode != 404 || body != "herd: no route for nowhere" || resp.Header.Get("X-Herd") != "1" || resp.Close {
		t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestRequestAccessors(t *testing.T) {
	got := make(chan [6]string, 1)
	d := directorFunc(func(r *Request) (Plan, *LocalResponse) {
		got <- [6]string{r.Method, r.Path(), r.Header("x-ONE"), r.Cookie("b"), r.Upgrade, strconv.FormatBool(r.Idempotent())}
		return nil, &LocalResponse{Status: 404}
	})
	_, addr := startProxy(t, Config{Director: d})
	c := dialRaw(t, addr)
	c.roundTrip(t, "DELETE /a/b?c=d HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nX-One: 2\r\nCookie: a=1; b=\"two\"\r\n\r\n")
	if g := <-got; g != [6]string{"DELETE", "/a/b", "1", "two", "", "true"} {
		t.Fatalf("got %q", g)
	}
}

func TestAccessLog(t *testing.T) {
	b, _ := echoBackend(t)
	entries := make(chan AccessEntry, 1)
	u := NewUpstream(b.addr, UpstreamOptions{})
	defer u.Close()
	_, addr := startProxy(t, Config{
		Director: &staticDirector{ups: []*Upstream{u}},
		AccessLog: func(e *AccessEntry) {
			c := *e
			c.Path = strings.Clone(e.Path)
			c.RequestID = strings.Clone(e.RequestID)
			entries <- c
		},
	})
	c := dialRaw(t, addr)
	c.roundTrip(t, "GET /logged HTTP/1.1\r\nHost: a\r\nX-Request-Id: rid-1\r\n\r\n")
	e := <-entries
	if e.Path != "/logged" || e.Status != 200 || e.Upstream != b.addr || e.Attempts != 1 || e.RequestID != "rid-1" || e.Bytes == 0 {
		t.Fatalf("entry %+v", e)
	}
}
