package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/proxy"
	"github.com/herd-cluster/herd/internal/spec"
)

// stdTransport forwards HTTP/2 clients' requests to one backend with the
// standard library: HTTP/1.1 (http.Transport) or h2c (http2.Transport).
type stdTransport struct {
	rt        http.RoundTripper
	closeIdle func()
}

// dialError marks a failure to connect: nothing was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func newStdTransport(sp *api.Service) *stdTransport {
	d := &net.Dialer{Timeout: sp.Timeouts.Connect.D(), KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return c, nil
	}
	if sp.BackendProtocol == spec.BackendH2C {
		t := &http2.Transport{
			AllowHTTP:          true,
			DisableCompression: true,
			IdleConnTimeout:    sp.Timeouts.Idle.D(),
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return dial(ctx, network, addr)
			},
		}
		return &stdTransport{rt: t, closeIdle: t.CloseIdleConnections}
	}
	t := &http.Transport{
		DialContext:         dial,
		MaxIdleConnsPerHost: 64,
		MaxConnsPerHost:     sp.CircuitBreaker.MaxConnections, // requests beyond it wait for a connection
		IdleConnTimeout:     sp.Timeouts.Idle.D(),
		DisableCompression:  true,
	}
	return &stdTransport{rt: t, closeIdle: t.CloseIdleConnections}
}

// isDialError reports whether err says the connection could not be made.
func isDialError(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// stdHandler serves the requests of HTTP/2 clients through the gateway.
type stdHandler struct {
	g     *Gateway
	proto string // X-Forwarded-Proto
}

func (h *stdHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.g.serveStd(w, r, h.proto) }

// Hop-by-hop header fields, never forwarded (RFC 9110 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Expect"}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// maxBufferedBody is the largest request body kept for a retry, as in the
// engine.
const maxBufferedBody = 64 << 10

// countingBody passes a client's request body through without closing it
// (a failed attempt's transport closes its body) and counts what was read.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

// serveStd forwards one request of an HTTP/2 client, with the same routing,
// balancing, retries and health accounting as the engine: the plan from
// direct picks the backend of every attempt.
func (g *Gateway) serveStd(w http.ResponseWriter, r *http.Request, proto string) {
	start := time.Now()
	preq := proxy.RequestFromHTTP(r)
	entry := proxy.AccessEntry{Time: start, Method: r.Method, Host: r.Host, Path: preq.Path(), RemoteAddr: r.RemoteAddr}
	p, local := g.direct(preq, true)
	if p == nil {
		entry.Status, entry.Bytes = local.Status, writeLocal(w, local)
		g.accessLog(&entry, start)
		return
	}

	// The outgoing header, the same for every attempt.
	hdr := r.Header.Clone()
	keepTE := strings.EqualFold(strings.TrimSpace(r.Header.Get("Te")), "trailers")
	removeHopHeaders(hdr)
	if keepTE {
		hdr.Set("Te", "trailers") // gRPC needs it
	}
	entry.RequestID = proxy.SetForwardedHeaders(hdr, r.RemoteAddr, proto, r.Host)

	// A small body of known length is read first so it can be replayed;
	// any other body is streamed, and then only a failure to connect (when
	// nothing of it was read) is retried.
	var buf []byte
	var stream *countingBody
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if hasBody {
		if r.ContentLength > 0 && r.ContentLength <= maxBufferedBody {
			var err error
			buf, err = io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
			if err != nil {
				p.Done(proxy.Outcome{Err: fmt.Errorf("read request body: %w", err)}, 0)
				entry.Status, entry.Bytes = 400, writeLocal(w, &proxy.LocalResponse{Status: 400, Body: "herd: cannot read the request body\n"})
				g.accessLog(&entry, start)
				return
			}
		} else {
			stream = &countingBody{r: r.Body}
		}
	}

	var (
		out      proxy.Outcome
		attempts int
		resp     *http.Response
		cancel   context.CancelFunc = func() {}
	)
	u, ok := p.Next(0, proxy.Outcome{})
	release := func() {}
	for ok {
		b := p.cur
		attempts++
		entry.Upstream = u.Addr()
		// The backend's in-flight limit (circuit_breaker.max_requests)
		// counts these requests too.
		if err := u.Acquire(); err != nil {
			out = proxy.Outcome{Upstream: u, ConnectErr: true, Err: err}
			u, ok = p.Next(attempts, out)
			continue
		}
		release = u.Release
		var ctx context.Context
		ctx, cancel = context.WithCancel(r.Context())
		outReq := &http.Request{
			Method:        r.Method,
			URL:           &url.URL{Scheme: "http", Host: u.Addr(), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        hdr.Clone(),
			Host:          r.Host,
			ContentLength: r.ContentLength,
			Trailer:       r.Trailer,
		}
		switch {
		case buf != nil:
			outReq.Body, outReq.ContentLength = io.NopCloser(strings.NewReader(string(buf))), int64(len(buf))
		case stream != nil:
			outReq.Body = stream
		default:
			outReq.ContentLength = 0
		}
		outReq = outReq.WithContext(ctx)
		var timedOut atomic.Bool
		timer := time.AfterFunc(p.s.perTry, func() { timedOut.Store(true); cancel() })
		t0 := time.Now()
		var err error
		resp, err = b.std.rt.RoundTrip(outReq)
		timer.Stop()
		out = proxy.Outcome{Upstream: u, Duration: time.Since(t0)}
		if err != nil {
			cancel()
			resp = nil
			out.Err = err
			switch {
			case timedOut.Load():
				out.Timeout = true
			case isDialError(err):
				out.ConnectErr = true
			}
			if r.Context().Err() != nil {
				break // the client went away
			}
			release()
			release = func() {}
			if stream != nil && (stream.n.Load() > 0 || !out.ConnectErr) {
				out.BodySent = stream.n.Load() > 0
				break // the body cannot be replayed
			}
			u, ok = p.Next(attempts, out)
			continue
		}
		out.Status = resp.StatusCode
		if resp.StatusCode >= 500 && (stream == nil || stream.n.Load() == 0) {
			if u2, ok2 := p.Next(attempts, out); ok2 {
				resp.Body.Close()
				cancel()
				release()
				release = func() {}
				resp, u = nil, u2
				continue
			}
		}
		break
	}
	if resp == nil {
		// The plan gave up (or the client left).
		cancel()
		l := p.Failure(out)
		if l == nil {
			status, msg := proxy.FailureAnswer(out, attempts)
			l = &proxy.LocalResponse{Status: status, Body: msg + "\n"}
		}
		entry.Status, entry.Bytes = l.Status, writeLocal(w, l)
		out.BytesOut = entry.Bytes
		p.Done(out, attempts)
		entry.Attempts = attempts
		g.accessLog(&entry, start)
		return
	}
	n, err := copyResponse(w, resp)
	resp.Body.Close()
	cancel()
	release()
	out.BytesOut = n
	if err != nil {
		out.Err = err
	}
	p.Done(out, attempts)
	entry.Status, entry.Bytes, entry.Attempts = resp.StatusCode, n, attempts
	g.accessLog(&entry, start)
}

// copyResponse streams a backend's response to the client, flushing as
// data arrives, and copies its trailers (gRPC's status is one). It returns
// the body bytes written.
func copyResponse(w http.ResponseWriter, resp *http.Response) (int64, error) {
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	removeHopHeaders(h)
	// A gRPC "trailers-only" answer (a status and no messages) carries its
	// status in its only header block. Toward the client, whose headers
	// go out before the body, the status must travel as trailers, or gRPC
	// clients report "server closed the stream without sending trailers".
	var grpcStatus http.Header
	if len(resp.Trailer) == 0 && resp.Header.Get("Grpc-Status") != "" {
		grpcStatus = http.Header{}
		for _, k := range []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"} {
			if vs, ok := h[k]; ok {
				grpcStatus[k] = vs
				delete(h, k)
			}
		}
	}
	announced := len(resp.Trailer)
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	bp := make([]byte, 32<<10)
	var n int64
	var werr error
	for {
		m, rerr := resp.Body.Read(bp)
		if m > 0 {
			k, err := w.Write(bp[:m])
			n += int64(k)
			if err != nil {
				werr = fmt.Errorf("write to client: %w", err)
				break
			}
			_ = rc.Flush()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			werr = fmt.Errorf("read from backend: %w", rerr)
			break
		}
	}
	if werr != nil {
		return n, werr
	}
	for k, vs := range resp.Trailer {
		if len(resp.Trailer) != announced {
			k = http.TrailerPrefix + k
		}
		h[k] = vs
	}
	for k, vs := range grpcStatus {
		h[http.TrailerPrefix+k] = vs
	}
	return n, nil
}

// writeLocal writes a gateway answer to a std-lib client.
func writeLocal(w http.ResponseWriter, l *proxy.LocalResponse) int64 {
	status := l.Status
	if status == 0 {
		status = 503
	}
	for _, kv := range l.Header {
		w.Header().Add(kv[0], kv[1])
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	n, _ := io.WriteString(w, l.Body)
	return int64(n)
}

func (g *Gateway) accessLog(e *proxy.AccessEntry, start time.Time) {
	if g.cfg.AccessLog == nil {
		return
	}
	e.Duration = time.Since(start)
	g.cfg.AccessLog(e)
}
