package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/herd-cluster/herd/api"
)

// selfSigned returns a PEM certificate and key for names, with cn as the
// subject's common name (to tell certificates apart).
func selfSigned(t *testing.T, cn string, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// writeCert writes a certificate pair into dir and returns its files.
func writeCert(t *testing.T, dir, name, cn string, names ...string) CertFile {
	t.Helper()
	c, k := selfSigned(t, cn, names...)
	f := CertFile{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(f.CertFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.KeyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// memKV is a KVSource held in memory.
type memKV struct {
	mu      sync.Mutex
	index   uint64
	pairs   map[string][]byte
	changed chan struct{}
}

func newMemKV() *memKV {
	return &memKV{index: 1, pairs: map[string][]byte{}, changed: make(chan struct{})}
}

func (m *memKV) put(key string, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.index++
	m.pairs[key] = v
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memKV) KVList(ctx context.Context, prefix string, index uint64) ([]*api.KVPair, uint64, error) {
	for {
		m.mu.Lock()
		idx, ch := m.index, m.changed
		var out []*api.KVPair
		for k, v := range m.pairs {
			if strings.HasPrefix(k, prefix) {
				out = append(out, &api.KVPair{Key: k, Value: v, ModifyIndex: idx})
			}
		}
		m.mu.Unlock()
		if idx != index {
			return out, idx, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// startGatewayWith starts a gateway with cfg (its HTTP listener on
// loopback unless set) and stops it at the end of the test.
func startGatewayWith(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	if cfg.HTTP == "" {
		cfg.HTTP = "127.0.0.1:0"
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	select {
	case <-g.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("gateway never applied its services")
	}
	return g
}

// peerCN handshakes with the HTTPS listener for serverName and returns
// the common name of the certificate it got ("" and the error on failure).
func peerCN(g *Gateway, serverName string) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", g.HTTPSAddr(), &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// protoBackend answers with the protocol it was spoken to in, the
// X-Forwarded-Proto it saw and "echo:" and the request body, followed by
// gRPC-like trailers. It speaks HTTP/1.1 and h2c.
func protoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("X-Backend-Proto", r.Proto)
		w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Seen-Te", r.Header.Get("Te"))
		w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(200)
		w.Write(append([]byte("echo:"), body...))
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "ok")
	})
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func h2cClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func tlsClient(t *testing.T, h2 bool, serverName string) *http.Client {
	t.Helper()
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: serverName}
	var tr http.RoundTripper
	if h2 {
		t2 := &http2.Transport{TLSClientConfig: conf}
		t.Cleanup(t2.CloseIdleConnections)
		tr = t2
	} else {
		conf.NextProtos = []string{"http/1.1"}
		t1 := &http.Transport{TLSClientConfig: conf}
		t.Cleanup(t1.CloseIdleConnections)
		tr = t1
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func protoService(name, host, backendProtocol string, addrs ...string) api.Service {
	s := api.Service{Name: name, Routes: []api.Route{{Host: host}}, BackendProtocol: backendProtocol}
	for _, a := range addrs {
		s.Backends = append(s.Backends, api.Backend{Address: a})
	}
	return s
}

func do(t *testing.T, c *http.Client, method, url, host, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Te", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

func TestHTTPSPicksCertificateBySNI(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", "cert-a", "a.test")
	b := writeCert(t, dir, "b", "cert-b", "*.b.test")
	be := protoBackend(t)
	addr := strings.TrimPrefix(be.URL, "http://")
	g := startGatewayWith(t, Config{HTTPS: "127.0.0.1:0", TLSCerts: []CertFile{a, b},
		Source: newMemSource(protoService("web", "a.test", "", addr))})

	for _, tc := range []struct{ name, sni, want string }{
		{name: "exact", sni: "a.test", want: "cert-a"},
		{name: "wildcard", sni: "x.b.test", want: "cert-b"},
		{name: "wildcard is one label", sni: "y.x.b.test", want: "cert-a"},
		{name: "unknown name gets the default", sni: "other.test", want: "cert-a"},
		{name: "no SNI gets the default", sni: "", want: "cert-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := peerCN(g, tc.sni)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("SNI %q got %s, want %s", tc.sni, got, tc.want)
			}
		})
	}

	t.Run("HTTP/1.1 over TLS", func(t *testing.T) {
		resp, body := do(t, tlsClient(t, false, "a.test"), "GET", "https://"+g.HTTPSAddr()+"/", "a.test", "")
		if resp.StatusCode != 200 || body != "echo:" || resp.ProtoMajor != 1 {
			t.Fatalf("got %d %s %q", resp.StatusCode, resp.Proto, body)
		}
		if got := resp.Header.Get("X-Seen-Proto"); got != "https" {
			t.Errorf("backend saw X-Forwarded-Proto %q, want https", got)
		}
	})
	t.Run("HTTP/2 over TLS", func(t *testing.T) {
		resp, body := do(t, tlsClient(t, true, "a.test"), "POST", "https://"+g.HTTPSAddr()+"/", "a.test", "hi")
		if resp.StatusCode != 200 || body != "echo:hi" || resp.ProtoMajor != 2 {
			t.Fatalf("got %d %s %q", resp.StatusCode, resp.Proto, body)
		}
		if got := resp.Header.Get("X-Seen-Proto"); got != "https" {
			t.Errorf("backend saw X-Forwarded-Proto %q, want https", got)
		}
		if resp.Header.Get("X-Seen-Request-Id") == "" {
			t.Error("no X-Request-Id reached the backend")
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Errorf("trailer Grpc-Status %q", got)
		}
	})
}

func TestHTTPSWithoutCertificateFailsHandshakes(t *testing.T) {
	kv := newMemKV()
	g := startGatewayWith(t, Config{HTTPS: "127.0.0.1:0", KV: kv, TLSKVPrefix: "herd/tls/", Source: newMemSource()})
	if _, err := peerCN(g, "a.test"); err == nil {
		t.Fatal("handshake succeeded without any certificate")
	}
	c, k := selfSigned(t, "from-kv", "a.test")
	kv.put("herd/tls/a", append(c, k...))
	waitCN(t, g, "a.test", "from-kv")
}

// waitCN polls handshakes until serverName gets the certificate named cn.
func waitCN(t *testing.T, g *Gateway, serverName, cn string) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	var got string
	var err error
	for time.Now().Before(deadline) {
		if got, err = peerCN(g, serverName); err == nil && got == cn {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still gets %q (err %v), want %s", serverName, got, err, cn)
}

func TestCertificatesReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	a := writeCert(t, dir, "a", "a-v1", "a.test")
	kv := newMemKV()
	c, k := selfSigned(t, "kv-v1", "k.test")
	kv.put("herd/tls/k", append(c, k...))
	kv.put("other/k", []byte("not under the prefix"))
	g := startGatewayWith(t, Config{HTTPS: "127.0.0.1:0", TLSCerts: []CertFile{a}, KV: kv, TLSKVPrefix: "herd/tls/",
		TLSReloadInterval: 50 * time.Millisecond, Source: newMemSource()})
	waitCN(t, g, "k.test", "kv-v1")

	// A replaced file (new content, newer modification time) is picked up.
	c2, k2 := selfSigned(t, "a-v2", "a.test")
	os.WriteFile(a.CertFile, c2, 0o600)
	os.WriteFile(a.KeyFile, k2, 0o600)
	later := time.Now().Add(time.Minute)
	os.Chtimes(a.CertFile, later, later)
	os.Chtimes(a.KeyFile, later, later)
	waitCN(t, g, "a.test", "a-v2")

	// A broken file is logged and the old certificate kept.
	os.WriteFile(a.CertFile, []byte("garbage"), 0o600)
	later = later.Add(time.Minute)
	os.Chtimes(a.CertFile, later, later)
	time.Sleep(200 * time.Millisecond) // several reload checks
	waitCN(t, g, "a.test", "a-v2")

	// A KV certificate changes, then a broken value keeps the old one.
	c3, k3 := selfSigned(t, "kv-v2", "k.test")
	kv.put("herd/tls/k", append(c3, k3...))
	waitCN(t, g, "k.test", "kv-v2")
	kv.put("herd/tls/k", []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	kv.put("herd/tls/n", append(c, k...)) // a later change, to know the broken one was seen
	waitCN(t, g, "k.test", "kv-v2")
}

func TestH2CPriorKnowledgeAndTrailers(t *testing.T) {
	be := protoBackend(t)
	addr := strings.TrimPrefix(be.URL, "http://")
	dir := t.TempDir()
	cert := writeCert(t, dir, "g", "grpc", "grpc.test")
	g := startGatewayWith(t, Config{HTTPS: "127.0.0.1:0", TLSCerts: []CertFile{cert}, Source: newMemSource(
		protoService("grpc", "grpc.test", "h2c", addr),
		protoService("web", "web.test", "", addr),
	)})
	check := func(t *testing.T, resp *http.Response, body, backendProto, fwdProto string) {
		t.Helper()
		if resp.StatusCode != 200 || body != "echo:ping" || resp.ProtoMajor != 2 {
			t.Fatalf("got %d %s %q", resp.StatusCode, resp.Proto, body)
		}
		if got := resp.Header.Get("X-Backend-Proto"); got != backendProto {
			t.Errorf("backend spoken to in %s, want %s", got, backendProto)
		}
		if got := resp.Header.Get("X-Seen-Proto"); got != fwdProto {
			t.Errorf("X-Forwarded-Proto %q, want %s", got, fwdProto)
		}
		if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
			t.Errorf("trailer Grpc-Status %q, want 0 (trailers %v)", got, resp.Trailer)
		}
		if got := resp.Trailer.Get("Grpc-Message"); got != "ok" {
			t.Errorf("trailer Grpc-Message %q, want ok (trailers %v)", got, resp.Trailer)
		}
	}
	t.Run("h2c to an h2c backend", func(t *testing.T) {
		resp, body := do(t, h2cClient(t), "POST", "http://"+g.HTTPAddr()+"/pkg.Svc/Call", "grpc.test", "ping")
		check(t, resp, body, "HTTP/2.0", "http")
		if got := resp.Header.Get("X-Seen-Te"); got != "trailers" {
			t.Errorf("backend saw TE %q, want trailers", got)
		}
	})
	t.Run("TLS h2 to an h2c backend", func(t *testing.T) {
		resp, body := do(t, tlsClient(t, true, "grpc.test"), "POST", "https://"+g.HTTPSAddr()+"/pkg.Svc/Call", "grpc.test", "ping")
		check(t, resp, body, "HTTP/2.0", "https")
	})
	t.Run("h2c to an HTTP/1.1 backend", func(t *testing.T) {
		resp, body := do(t, h2cClient(t), "POST", "http://"+g.HTTPAddr()+"/", "web.test", "ping")
		check(t, resp, body, "HTTP/1.1", "http")
	})
	t.Run("streamed body", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte("pi"))
			pw.Write([]byte("ng"))
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "http://"+g.HTTPAddr()+"/pkg.Svc/Call", pr)
		req.Host = "grpc.test"
		resp, err := h2cClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		check(t, resp, string(b), "HTTP/2.0", "http")
	})
	t.Run("HTTP/1.1 to an h2c service is refused", func(t *testing.T) {
		code, body, _ := get(t, g, "grpc.test", "/")
		if code != 502 || !strings.Contains(body, "service grpc speaks h2c to its backends: use HTTP/2") {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("no route", func(t *testing.T) {
		resp, _ := do(t, h2cClient(t), "GET", "http://"+g.HTTPAddr()+"/", "nothing.test", "")
		if resp.StatusCode != 404 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}

func TestHTTP2RetriesOnAnotherBackend(t *testing.T) {
	be := protoBackend(t)
	dead := closedAddr(t)
	g := startGatewayWith(t, Config{Source: newMemSource(api.Service{
		Name: "grpc", Routes: []api.Route{{Host: "grpc.test"}}, BackendProtocol: "h2c",
		Backends: []api.Backend{{Address: dead}, {Address: strings.TrimPrefix(be.URL, "http://")}},
		Retry:    &api.Retry{Attempts: 2},
	})})
	c := h2cClient(t)
	for i := range 4 { // round robin: the dead backend comes first at least once
		resp, body := do(t, c, "POST", "http://"+g.HTTPAddr()+"/", "grpc.test", "ping")
		if resp.StatusCode != 200 || body != "echo:ping" {
			t.Fatalf("request %d: got %d %q", i, resp.StatusCode, body)
		}
	}
	// A streamed body is retried too when the connection failed.
	for i := range 2 {
		req, _ := http.NewRequest("POST", "http://"+g.HTTPAddr()+"/", io.MultiReader(bytes.NewReader([]byte("pi")), strings.NewReader("ng")))
		req.Host = "grpc.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "echo:ping" {
			t.Fatalf("streamed request %d: got %d %q", i, resp.StatusCode, b)
		}
	}

	// With every backend down the answer names the service.
	gDown := startGatewayWith(t, Config{Source: newMemSource(protoService("grpc", "grpc.test", "h2c", dead))})
	resp, body := do(t, c, "GET", "http://"+gDown.HTTPAddr()+"/", "grpc.test", "")
	if resp.StatusCode != 503 || !strings.Contains(body, "service grpc") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// The backend's in-flight limit holds on the HTTP/2 path too: with
// max_requests 1 and one slow backend, a second concurrent request is
// refused (503 naming the service) instead of piling onto it.
func TestHTTP2RespectsMaxRequests(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	defer close(release)
	svc := api.Service{Name: "tight", Routes: []api.Route{{Host: "tight.test"}},
		Backends:       []api.Backend{{Address: strings.TrimPrefix(slow.URL, "http://")}},
		CircuitBreaker: &api.CircuitBreaker{MaxRequests: 1}}
	g := startGateway(t, newMemSource(svc))
	c := h2cClient(t)
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+g.HTTPAddr()+"/", nil)
		req.Host = "tight.test"
		resp, err := c.Do(req)
		if err != nil {
			first <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	waitFor(t, func() bool { return g.Services()[0].Backends[0].InFlight == 1 })
	req, _ := http.NewRequest("GET", "http://"+g.HTTPAddr()+"/", nil)
	req.Host = "tight.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "tight") {
		t.Fatalf("second request: %d %q, want 503 naming the service", resp.StatusCode, body)
	}
	release <- struct{}{}
	if code := <-first; code != 200 {
		t.Fatalf("first request: %d", code)
	}
}
