package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxBufferedBody is the largest request body buffered for replay.
const maxBufferedBody = 64 << 10

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Request ids: a per-process random prefix and a counter.
var (
	reqIDPrefix = func() string {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return strconv.FormatInt(int64(os.Getpid()), 16)
		}
		return hex.EncodeToString(b[:])
	}()
	reqIDCounter atomic.Uint64
)

// clientError marks a failure caused by the client while streaming its body.
type clientError struct{ err error }

func (e *clientError) Error() string { return "client: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// handle serves one request; it returns whether the connection may serve
// another one.
func (c *conn) handle() bool {
	s := c.s
	start := time.Now()
	c.req.Method, c.req.Proto, c.req.minor = "", "", 1 // for an error answer before parsing
	if err := c.readHead(); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			c.writeError(he.status, he.msg, true)
		}
		return false
	}
	if s.cfg.H2C != nil && string(c.head) == h2Preface {
		c.handoff = c.handOver()
		return false
	}
	r := &c.req
	if err := parseRequestHead(c.head, r); err != nil {
		he := err.(*httpError)
		c.writeError(he.status, he.msg, true)
		return false
	}
	r.RemoteAddr, r.TLS = c.remoteAddr, c.tls
	c.entry = AccessEntry{Time: start}

	plan, local := s.cfg.Director.Direct(r)
	if plan == nil {
		if local == nil {
			local = &LocalResponse{Status: 503, Body: "herd: no route"}
		}
		closeAfter := r.close || r.hasBody() // the body is left unread
		n := c.writeLocal(local, closeAfter)
		c.log(start, local.Status, n, nil, 0)
		return !closeAfter
	}

	// Buffer the request body (up to maxBufferedBody) so attempts can replay it.
	c.body = c.body[:0]
	c.bodyDone, c.streamed = true, false
	if r.hasBody() {
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if r.expect100 && r.minor == 1 {
			c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := c.bw.Flush(); err != nil {
				plan.Done(Outcome{Err: fmt.Errorf("write 100 continue: %w", err)}, 0)
				return false
			}
		}
		if err := c.bufferBody(); err != nil {
			out := Outcome{Err: fmt.Errorf("read request body: %w", err)}
			status := 0
			if errors.Is(err, errChunk) {
				status = 400
				c.writeError(400, "malformed chunked body", true)
			}
			plan.Done(out, 0)
			c.log(start, status, 0, nil, 0)
			return false
		}
	}
	c.buildUpstreamRequest()

	var (
		out      Outcome
		attempts int
	)
	u, ok := plan.Next(0, Outcome{})
	for ok {
		var uc *upConn
		var cerr error
		out, uc, cerr = c.attempt(u)
		attempts++
		if cerr != nil {
			status := 0
			if errors.Is(cerr, errChunk) {
				status = 400
				c.writeError(400, "malformed chunked body", true)
			}
			plan.Done(out, attempts)
			c.log(start, status, 0, u, attempts)
			return false
		}
		if out.Err != nil {
			if c.streamed {
				break // the body cannot be replayed
			}
			u, ok = plan.Next(attempts, out)
			continue
		}
		if out.Status >= 500 && !c.streamed {
			if u2, ok2 := plan.Next(attempts, out); ok2 {
				c.discardResponse(uc)
				u = u2
				continue
			}
		}
		keep, n, err := c.forwardResponse(uc)
		out.BytesOut = n
		if err != nil {
			out.Err = err
		}
		plan.Done(out, attempts)
		c.log(start, out.Status, n, u, attempts)
		return keep && !r.close
	}

	// The plan gave up (or never had an upstream).
	status, msg := FailureAnswer(out, attempts)
	closeAfter := r.close || c.streamed || (r.hasBody() && !c.bodyDone)
	var n int64
	if f, ok := plan.(FailureResponder); ok {
		if l := f.Failure(out); l != nil {
			status = l.Status
			n = c.writeLocal(l, closeAfter)
		}
	}
	if n == 0 {
		n = c.writeError(status, msg, closeAfter)
	}
	out.BytesOut = n
	plan.Done(out, attempts)
	c.log(start, status, n, u, attempts)
	return !closeAfter
}

// FailureAnswer is the status and short message with which a request is
// answered when its plan gave up after attempts tries that ended with out:
// 503 when nothing was tried or the backend's circuit breaker refused, 504
// on a timeout, 502 otherwise, naming the backend and the failure.
func FailureAnswer(out Outcome, attempts int) (int, string) {
	if attempts == 0 || out.Upstream == nil {
		return 503, "herd: no upstream available"
	}
	addr := out.Upstream.Addr()
	detail := ""
	if out.Err != nil {
		detail = ": " + errText(out.Err)
	}
	switch {
	case out.Timeout:
		return 504, "herd: backend " + addr + " timed out" + detail
	case out.ConnectErr:
		switch {
		case errors.Is(out.Err, ErrMaxConns), errors.Is(out.Err, ErrMaxRequests):
			return 503, "herd: backend " + addr + " overloaded (" + out.Err.Error() + ")"
		case errors.Is(out.Err, ErrUpstreamClosed):
			return 502, "herd: backend " + addr + " is unavailable (removed)"
		case isTimeout(out.Err):
			return 502, "herd: backend " + addr + " did not accept the connection in time"
		}
		return 502, "herd: backend " + addr + " refused the connection"
	}
	return 502, "herd: backend " + addr + " failed" + detail
}

func errText(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the response"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return err.Error()
}

func (c *conn) log(start time.Time, status int, n int64, u *Upstream, attempts int) {
	f := c.s.cfg.AccessLog
	if f == nil {
		return
	}
	r := &c.req
	e := &c.entry
	e.Time = start
	e.Method, e.Host, e.Path, e.RemoteAddr = r.Method, r.Host, r.Path(), c.remoteAddr
	e.Status, e.Bytes, e.Duration, e.Attempts = status, n, time.Since(start), attempts
	e.Upstream = ""
	if u != nil {
		e.Upstream = u.addr
	}
	f(e)
}

// bufferBody reads up to maxBufferedBody of the request body into c.body.
func (c *conn) bufferBody() error {
	r := &c.req
	if !r.chunked {
		if r.ContentLength > maxBufferedBody {
			c.bodyDone = false
			return nil
		}
		n := int(r.ContentLength)
		if cap(c.body) < n {
			c.body = make([]byte, n, max(n, 4096))
		}
		c.body = c.body[:n]
		_, err := io.ReadFull(c.br, c.body)
		return err
	}
	c.cr.reset(c.br, c.s.cfg.MaxHeaderBytes)
	if cap(c.body) < 4096 {
		c.body = make([]byte, 0, 4096)
	}
	for {
		if len(c.body) == cap(c.body) {
			if len(c.body) >= maxBufferedBody {
				c.bodyDone = false
				return nil
			}
			c.body = append(c.body, 0)[:len(c.body)]
		}
		lim := min(cap(c.body), maxBufferedBody)
		n, err := c.cr.Read(c.body[len(c.body):lim])
		c.body = c.body[:len(c.body)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(c.body) >= maxBufferedBody {
			c.bodyDone = false
			return nil
		}
	}
}

// buildUpstreamRequest writes the upstream request header block and the
// buffered body into c.out.
func (c *conn) buildUpstreamRequest() {
	r := &c.req
	b := c.out[:0]
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Target...)
	b = append(b, " HTTP/1.1\r\n"...)
	if r.absHost || r.minor == 0 && r.Host == "" {
		// HTTP/1.1 upstream requests need a Host field (empty if unknown).
		b = append(b, "Host: "...)
		b = append(b, r.Host...)
		b = append(b, "\r\n"...)
	}
	var xffN, fwdN int
	hasXFH, clDone := false, false
	reqIDFound := false
	var reqIDField field
	for _, f := range r.fields {
		name := r.bytes(f.name)
		switch headerCode(name) {
		case hConnection, hKeepAlive, hProxyConnection, hTE, hTransferEncoding, hExpect, hUpgrade, hXForwardedProto:
			continue
		case hHost:
			if r.absHost {
				continue
			}
		case hContentLength:
			if clDone {
				continue
			}
			clDone = true
		case hXForwardedFor:
			xffN++
			continue
		case hForwarded:
			fwdN++
			continue
		case hXForwardedHost:
			hasXFH = true
		case hXRequestID:
			if !reqIDFound {
				reqIDFound, reqIDField = true, f
			}
		case hOther:
			if c.isConnToken(name) {
				continue
			}
		}
		b = append(b, r.raw[f.name.lo:f.value.hi]...)
		b = append(b, '\r', '\n')
	}
	if r.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if r.Upgrade != "" {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, r.Upgrade...)
		b = append(b, "\r\n"...)
	}
	// X-Forwarded-For: the existing value(s), then the client address.
	b = append(b, "X-Forwarded-For: "...)
	if xffN > 0 {
		b = c.appendValues(b, hXForwardedFor)
	}
	b = append(b, c.clientIP...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, c.proto...)
	b = append(b, "\r\n"...)
	if !hasXFH && r.Host != "" {
		b = append(b, "X-Forwarded-Host: "...)
		b = append(b, r.Host...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Forwarded: "...)
	if fwdN > 0 {
		b = c.appendValues(b, hForwarded)
	}
	b = appendForwarded(b, c.clientIP, c.proto, r.Host)
	b = append(b, "\r\n"...)
	if reqIDFound {
		c.entry.RequestID = r.str(reqIDField.value)
	} else {
		b = append(b, "X-Request-Id: "...)
		lo := len(b)
		b = appendRequestID(b)
		c.reqID = append(c.reqID[:0], b[lo:]...)
		c.entry.RequestID = unsafeString(c.reqID)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	// Buffered body.
	if r.chunked {
		if len(c.body) > 0 {
			b = appendChunkHeader(b, len(c.body))
			b = append(b, c.body...)
			b = append(b, "\r\n"...)
		}
		if c.bodyDone {
			b = append(b, "0\r\n"...)
			b = append(b, c.cr.trailer...)
			b = append(b, "\r\n"...)
		}
	} else {
		b = append(b, c.body...)
	}
	c.out = b
}

// appendValues appends the non-empty values of the header with code, each
// followed by ", ".
func (c *conn) appendValues(b []byte, code int) []byte {
	r := &c.req
	for _, f := range r.fields {
		if f.value.hi > f.value.lo && headerCode(r.bytes(f.name)) == code {
			b = append(b, r.bytes(f.value)...)
			b = append(b, ", "...)
		}
	}
	return b
}

func (c *conn) isConnToken(name []byte) bool {
	for _, t := range c.req.connTok {
		if equalFold(name, unsafeString(c.req.raw[t.lo:t.hi])) {
			return true
		}
	}
	return false
}

// appendForwarded appends one RFC 7239 Forwarded element for a request
// from clientIP (an IPv6 address quoted in brackets) over proto to host.
func appendForwarded(b []byte, clientIP, proto, host string) []byte {
	b = append(b, "for="...)
	if indexByteString(clientIP, ':') >= 0 {
		b = append(b, "\"["...)
		b = append(b, clientIP...)
		b = append(b, "]\""...)
	} else {
		b = append(b, clientIP...)
	}
	b = append(b, ";proto="...)
	b = append(b, proto...)
	if host != "" {
		b = append(b, ";host="...)
		b = appendToken(b, host)
	}
	return b
}

// appendRequestID appends a new X-Request-Id value: this process's random
// prefix and a counter.
func appendRequestID(b []byte) []byte {
	b = append(b, reqIDPrefix...)
	b = append(b, '-')
	return strconv.AppendUint(b, reqIDCounter.Add(1), 16)
}

// appendToken appends v, quoted as an RFC 7230 quoted-string unless it is a
// token.
func appendToken(b []byte, v string) []byte {
	tok := true
	for i := 0; i < len(v); i++ {
		if !isTchar(v[i]) {
			tok = false
			break
		}
	}
	if tok {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}
