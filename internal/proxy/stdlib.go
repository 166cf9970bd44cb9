package proxy

import (
	"bytes"
	"net"
	"net/http"
	"time"
)

// RequestFromHTTP describes a net/http request (one served by another
// server, such as an HTTP/2 one) as a Request, so that a Director can route
// it the same way as the engine's own requests. Header and Cookie read
// r.Header. The result refers to r and must not outlive it.
func RequestFromHTTP(r *http.Request) *Request {
	target := r.RequestURI
	if target == "" || target[0] != '/' && target != "*" {
		target = r.URL.RequestURI()
	}
	hdr := r.Header
	if hdr == nil {
		hdr = http.Header{}
	}
	return &Request{
		Method:        r.Method,
		Target:        target,
		Host:          r.Host,
		Proto:         r.Proto,
		RemoteAddr:    r.RemoteAddr,
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
		hdr:           hdr,
	}
}

// NewRequestID returns a new X-Request-Id value, unique in this process
// and, with high probability, across processes.
func NewRequestID() string {
	return string(appendRequestID(make([]byte, 0, 32)))
}

// SetForwardedHeaders sets the forwarding headers on h, an outgoing
// request's header, the way the engine does: the client's IP appended to
// X-Forwarded-For and to Forwarded (for=...;proto=...;host=...),
// X-Forwarded-Proto set to proto, X-Forwarded-Host set to host unless
// present, and X-Request-Id added unless present. It returns the request
// id. remoteAddr is the client's host:port (or bare host).
func SetForwardedHeaders(h http.Header, remoteAddr, proto, host string) string {
	clientIP := remoteAddr
	if ip, _, err := net.SplitHostPort(remoteAddr); err == nil {
		clientIP = ip
	}
	xff := clientIP
	if prior := joinValues(h.Values("X-Forwarded-For")); prior != "" {
		xff = prior + ", " + clientIP
	}
	h.Set("X-Forwarded-For", xff)
	h.Set("X-Forwarded-Proto", proto)
	if h.Get("X-Forwarded-Host") == "" && host != "" {
		h.Set("X-Forwarded-Host", host)
	}
	var fwd []byte
	if prior := joinValues(h.Values("Forwarded")); prior != "" {
		fwd = append(fwd, prior...)
		fwd = append(fwd, ", "...)
	}
	fwd = appendForwarded(fwd, clientIP, proto, host)
	h.Set("Forwarded", string(fwd))
	id := h.Get("X-Request-Id")
	if id == "" {
		id = NewRequestID()
		h.Set("X-Request-Id", id)
	}
	return id
}

// joinValues joins the non-empty values with ", ".
func joinValues(vs []string) string {
	var b bytes.Buffer
	for _, v := range vs {
		if v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v)
	}
	return b.String()
}

// h2Preface is the start of the HTTP/2 client connection preface as the
// engine reads it: a request line and an empty line ("SM\r\n\r\n" follows).
const h2Preface = "PRI * HTTP/2.0\r\n\r\n"

// replayConn is a connection whose first reads return bytes the engine had
// already read from it.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handOver prepares the connection for Config.H2C: the bytes read so far
// (the preface's first part and whatever is buffered) are replayed first.
func (c *conn) handOver() net.Conn {
	buf := append([]byte(nil), c.head...)
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		buf = append(buf, b...)
	}
	c.nc.SetDeadline(time.Time{})
	return &replayConn{Conn: c.nc, buf: buf}
}
