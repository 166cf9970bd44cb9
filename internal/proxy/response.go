package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
	"unsafe"
)

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

var (
	errRespHeaderTooLarge = errors.New("response header too large")
	errBadResponse        = errors.New("malformed response header")
	errUnexpected101      = errors.New("unexpected 101 response to a request without upgrade")
)

// attempt sends the request to u and reads the response header. On success
// it returns the connection with the response header parsed into c.r*.
// cerr reports a failure of the client (its body), which ends the request.
func (c *conn) attempt(u *Upstream) (out Outcome, uc *upConn, cerr error) {
	out.Upstream = u
	t0 := time.Now()
	if err := u.begin(); err != nil {
		out.ConnectErr, out.Err, out.Duration = true, err, time.Since(t0)
		return out, nil, nil
	}
	// A body that cannot be buffered is sent on a fresh connection: a stale
	// pooled one could not be retried.
	uc, err := u.get(context.Background(), c.bodyDone)
	if err != nil {
		u.end()
		out.ConnectErr, out.Err, out.Duration = true, err, time.Since(t0)
		return out, nil, nil
	}
	staleRetried := false
	for {
		c.up.Store(uc)
		if rt := u.opts.ResponseTimeout; rt > 0 {
			// The per-try timeout covers sending the request too.
			uc.nc.SetDeadline(time.Now().Add(rt))
		}
		err, cerr = c.send(uc)
		if cerr != nil {
			c.putUp(uc, false)
			u.end()
			out.Err, out.BodySent, out.Duration = cerr, c.streamed, time.Since(t0)
			return out, nil, cerr
		}
		if err == nil {
			err = c.readResponseHead(uc)
		}
		if err == nil {
			if u.opts.ResponseTimeout > 0 {
				uc.nc.SetDeadline(time.Time{})
			}
			break
		}
		c.putUp(uc, false)
		timeout := isTimeout(err)
		if uc.reused && !staleRetried && !c.rgot && !c.streamed && !timeout {
			// The classic keep-alive race: the backend closed the idle
			// connection as we reused it. Retry once on a new connection.
			staleRetried = true
			uc, err = u.get(context.Background(), false)
			if err != nil {
				u.end()
				out.ConnectErr, out.Err, out.Duration = true, err, time.Since(t0)
				return out, nil, nil
			}
			continue
		}
		u.end()
		out.Timeout, out.BodySent, out.Duration = timeout, c.streamed, time.Since(t0)
		if timeout {
			out.Err = fmt.Errorf("backend %s: no response within %v: %w", u.addr, u.opts.ResponseTimeout, err)
		} else {
			out.Err = fmt.Errorf("backend %s: %w", u.addr, err)
		}
		return out, nil, nil
	}
	out.Status, out.Duration = c.rstatus, time.Since(t0)
	return out, uc, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// send writes the request (and streams the rest of a large body). err is an
// upstream failure, cerr a client one.
func (c *conn) send(uc *upConn) (err, cerr error) {
	if _, err := uc.nc.Write(c.out); err != nil {
		return err, nil
	}
	if c.bodyDone {
		return nil, nil
	}
	c.streamed = true
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	r := &c.req
	idle := c.s.cfg.IdleTimeout
	if !r.chunked {
		remain := r.ContentLength - int64(len(c.body))
		for remain > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idle))
			n, rerr := c.br.Read(buf[:min(int64(len(buf)), remain)])
			remain -= int64(n)
			if n > 0 {
				if _, err := uc.nc.Write(buf[:n]); err != nil {
					return err, nil
				}
			}
			if rerr != nil && remain > 0 {
				return nil, &clientError{eofUnexpected(rerr)}
			}
		}
		return nil, nil
	}
	// Chunked: re-encode what the validating decoder returns.
	const hdr = 20
	for {
		c.nc.SetReadDeadline(time.Now().Add(idle))
		n, rerr := c.cr.Read(buf[hdr : len(buf)-2])
		if n > 0 {
			h := appendChunkHeader(buf[:0:hdr], n)
			start := hdr - len(h)
			copy(buf[start:], h)
			end := hdr + n
			buf[end], buf[end+1] = '\r', '\n'
			if _, err := uc.nc.Write(buf[start : end+2]); err != nil {
				return err, nil
			}
		}
		if rerr == io.EOF {
			b := append(buf[:0], "0\r\n"...)
			b = append(b, c.cr.trailer...)
			b = append(b, "\r\n"...)
			if _, err := uc.nc.Write(b); err != nil {
				return err, nil
			}
			return nil, nil
		}
		if rerr != nil {
			return nil, &clientError{rerr}
		}
	}
}

// readResponseHead reads the final response header block (skipping 1xx
// interim responses other than 101) into c.rhead and parses it.
func (c *conn) readResponseHead(uc *upConn) error {
	c.rgot = false
	for {
		if err := c.readRespBlock(uc.br); err != nil {
			return err
		}
		if err := c.parseResponseHead(); err != nil {
			return err
		}
		if c.rstatus >= 100 && c.rstatus < 200 && c.rstatus != 101 {
			continue
		}
		if c.rstatus == 101 && c.req.Upgrade == "" {
			return errUnexpected101
		}
		return nil
	}
}

func (c *conn) readRespBlock(br *bufio.Reader) error {
	c.rhead = c.rhead[:0]
	max := c.s.cfg.MaxResponseHeaderBytes
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return err
		}
	}
	c.rgot = true
	if b, _ := br.Peek(br.Buffered()); len(b) > 0 && b[0] != '\r' && b[0] != '\n' {
		if i := indexHeaderEnd(b); i > 0 && i <= max {
			c.rhead = append(c.rhead, b[:i]...)
			br.Discard(i)
			return nil
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(c.rhead)+len(line) > max {
			return errRespHeaderTooLarge
		}
		c.rhead = append(c.rhead, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return eofUnexpected(err)
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			n := len(c.rhead) - len(line)
			if n > 0 && c.rhead[n-1] == '\n' {
				return nil
			}
			if n == 0 {
				return errBadResponse
			}
		}
	}
}

// parseResponseHead parses c.rhead: status line, fields and framing.
func (c *conn) parseResponseHead() error {
	h := c.rhead
	c.rfields = c.rfields[:0]
	c.rconnTok = c.rconnTok[:0]
	c.rchunked, c.rcl, c.rclose, c.rupgrade = false, -1, false, span{}
	eol := bytes.IndexByte(h, '\n')
	line := h[:eol]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	// "HTTP/1.x SSS[ reason]"
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	for _, ch := range line[12:] {
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			return errBadResponse
		}
	}
	c.rstatus = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if c.rstatus < 100 {
		return errBadResponse
	}
	c.rstatusLo, c.rstatusHi = 9, len(line)
	http10 := line[7] == '0'
	c.rclose = http10
	pos := eol + 1
	teSeen := false
	for {
		e := bytes.IndexByte(h[pos:], '\n')
		if e < 0 {
			return errBadResponse
		}
		lo, hi := pos, pos+e
		pos = hi + 1
		if hi > lo && h[hi-1] == '\r' {
			hi--
		}
		if hi == lo {
			break
		}
		line := h[lo:hi]
		if line[0] == ' ' || line[0] == '\t' {
			return errBadResponse
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadResponse
		}
		for _, ch := range line[:colon] {
			if !isTchar(ch) {
				return errBadResponse
			}
		}
		vlo, vhi := lo+colon+1, hi
		for vlo < vhi && (h[vlo] == ' ' || h[vlo] == '\t') {
			vlo++
		}
		for vhi > vlo && (h[vhi-1] == ' ' || h[vhi-1] == '\t') {
			vhi--
		}
		for _, ch := range h[vlo:vhi] {
			if (ch < ' ' && ch != '\t') || ch == 0x7f {
				return errBadResponse
			}
		}
		if len(c.rfields) >= maxFields {
			return errBadResponse
		}
		f := field{span{int32(lo), int32(lo + colon)}, span{int32(vlo), int32(vhi)}}
		c.rfields = append(c.rfields, f)
		value := h[vlo:vhi]
		switch headerCode(line[:colon]) {
		case hContentLength:
			n, ok := parseContentLength(value)
			if !ok || (c.rcl >= 0 && n != c.rcl) {
				return errBadResponse
			}
			c.rcl = n
		case hTransferEncoding:
			teSeen = true
			// The final coding decides: chunked, or read until close.
			v := value
			if i := bytes.LastIndexByte(v, ','); i >= 0 {
				v = bytes.TrimLeft(v[i+1:], " \t")
			}
			c.rchunked = equalFoldBytes(v, "chunked")
		case hConnection:
			c.parseRespConnection(f.value, http10)
		case hUpgrade:
			c.rupgrade = f.value
		}
	}
	if teSeen {
		if c.rcl >= 0 {
			c.rclose = true // RFC 9112 6.3: do not reuse the connection
		}
		c.rcl = -1
		if !c.rchunked {
			c.rclose = true
		}
	}
	return nil
}

func (c *conn) parseRespConnection(v span, http10 bool) {
	h := c.rhead
	i := v.lo
	for i < v.hi {
		j := i
		for j < v.hi && h[j] != ',' {
			j++
		}
		lo, hi := i, j
		for lo < hi && (h[lo] == ' ' || h[lo] == '\t') {
			lo++
		}
		for hi > lo && (h[hi-1] == ' ' || h[hi-1] == '\t') {
			hi--
		}
		tok := h[lo:hi]
		switch {
		case len(tok) == 0:
		case equalFoldBytes(tok, "close"):
			c.rclose = true
		case equalFoldBytes(tok, "keep-alive"):
			if http10 {
				c.rclose = false
			}
		case equalFoldBytes(tok, "upgrade"):
		default:
			if len(c.rconnTok) < 16 {
				c.rconnTok = append(c.rconnTok, span{lo, hi})
			}
		}
		i = j + 1
	}
}

// Response body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked  // chunked to chunked
	bodyDechunk  // chunked to close-delimited (HTTP/1.0 client)
	bodyUntilEOF // close-delimited
)

func (c *conn) responseFraming() int {
	s := c.rstatus
	if c.req.Method == "HEAD" || s == 204 || s == 304 || (s >= 100 && s < 200) {
		return bodyNone
	}
	switch {
	case c.rchunked && c.req.minor == 1:
		return bodyChunked
	case c.rchunked:
		return bodyDechunk
	case c.rcl >= 0:
		return bodyLength
	}
	return bodyUntilEOF
}

// discardResponse drops a response the plan decided to retry: a short
// buffered body is skipped and the connection kept, otherwise it is closed.
func (c *conn) discardResponse(uc *upConn) {
	u := uc.u
	reusable := false
	switch c.responseFraming() {
	case bodyNone:
		reusable = !c.rclose
	case bodyLength:
		if c.rcl <= int64(uc.br.Buffered()) {
			uc.br.Discard(int(c.rcl))
			reusable = !c.rclose && uc.br.Buffered() == 0
		}
	}
	c.putUp(uc, reusable)
	u.end()
}

// forwardResponse writes the response whose header is in c.rhead to the
// client and releases uc. It returns whether the client connection may be
// kept, the bytes written, and a failure while copying the body.
func (c *conn) forwardResponse(uc *upConn) (keep bool, n int64, err error) {
	r := &c.req
	u := uc.u
	mode := c.responseFraming()
	upgraded := c.rstatus == 101
	clientClose := r.close || mode == bodyDechunk || mode == bodyUntilEOF || c.s.shutting.Load()
	bw := c.bw
	h := c.rhead

	// Header.
	before := bw.Buffered()
	bw.WriteString("HTTP/1.1 ")
	bw.Write(h[c.rstatusLo:c.rstatusHi])
	if c.rstatusHi-c.rstatusLo == 3 {
		bw.WriteByte(' ') // the SP before an empty reason phrase is required
	}
	bw.WriteString("\r\n")
	for _, f := range c.rfields {
		switch headerCode(h[f.name.lo:f.name.hi]) {
		case hConnection, hKeepAlive, hProxyConnection, hTE, hTransferEncoding:
			continue
		case hUpgrade:
			continue // re-added below for 101
		case hContentLength:
			if mode == bodyChunked || mode == bodyDechunk || mode == bodyUntilEOF {
				continue
			}
		case hOther:
			if c.isRespConnToken(h[f.name.lo:f.name.hi]) {
				continue
			}
		}
		bw.Write(h[f.name.lo:f.value.hi])
		bw.WriteString("\r\n")
	}
	switch {
	case upgraded:
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.Write(h[c.rupgrade.lo:c.rupgrade.hi])
		bw.WriteString("\r\n")
	case clientClose:
		bw.WriteString("Connection: close\r\n")
	case r.minor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	if mode == bodyChunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	n = int64(bw.Buffered() - before)

	if upgraded {
		if err := bw.Flush(); err != nil {
			c.putUp(uc, false)
			u.end()
			return false, n, fmt.Errorf("write to client: %w", err)
		}
		c.nc.SetReadDeadline(time.Time{})
		_, out2, terr := pipe(c.nc, c.br, uc.nc, uc.br, c.s.cfg.IdleTimeout)
		c.putUp(uc, false)
		u.end()
		return false, n + out2, terr
	}

	// Body.
	var m int64
	var rerr, werr error
	reusable := !c.rclose
	switch mode {
	case bodyLength:
		m, rerr, werr = c.copyBody(uc.br, c.rcl)
	case bodyUntilEOF:
		m, rerr, werr = c.copyBody(uc.br, -1)
		reusable = false
	case bodyChunked, bodyDechunk:
		m, rerr, werr = c.copyChunked(uc.br, mode == bodyChunked)
	}
	n += m
	if rerr != nil || werr != nil || uc.br.Buffered() > 0 {
		reusable = false
	}
	// The upstream side is done: release it before the last client write.
	c.putUp(uc, reusable)
	u.end()
	if rerr == nil && werr == nil {
		werr = bw.Flush()
	}
	switch {
	case rerr != nil:
		return false, n, fmt.Errorf("read response body from %s: %w", u.addr, rerr)
	case werr != nil:
		return false, n, fmt.Errorf("write response to client: %w", werr)
	}
	return !clientClose, n, nil
}

func (c *conn) isRespConnToken(name []byte) bool {
	for _, t := range c.rconnTok {
		if equalFold(name, unsafeString(c.rhead[t.lo:t.hi])) {
			return true
		}
	}
	return false
}

// copyBody copies n bytes (or until EOF if n < 0) from src to the client,
// flushing whenever src has nothing buffered (so streamed responses reach
// the client promptly).
func (c *conn) copyBody(src *bufio.Reader, n int64) (written int64, rerr, werr error) {
	bw := c.bw
	var bp *[]byte
	defer func() {
		if bp != nil {
			copyBufPool.Put(bp)
		}
	}()
	for n != 0 {
		if k := src.Buffered(); k > 0 {
			if n > 0 && int64(k) > n {
				k = int(n)
			}
			b, _ := src.Peek(k)
			if _, werr = bw.Write(b); werr != nil {
				return written, nil, werr
			}
			src.Discard(k)
			written += int64(k)
			n -= int64(k)
			if n < 0 {
				n = -1
			}
			continue
		}
		if bw.Buffered() > 0 {
			if werr = bw.Flush(); werr != nil {
				return written, nil, werr
			}
		}
		if bp == nil {
			bp = copyBufPool.Get().(*[]byte)
		}
		buf := *bp
		if n > 0 && int64(len(buf)) > n {
			buf = buf[:n]
		}
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr = bw.Write(buf[:k]); werr != nil {
				return written, nil, werr
			}
			written += int64(k)
			if n > 0 {
				n -= int64(k)
			}
		}
		if err != nil {
			if err == io.EOF && n < 0 {
				return written, nil, nil
			}
			return written, eofUnexpected(err), nil
		}
	}
	return written, nil, nil
}

// copyChunked decodes a chunked body from src and writes it to the client,
// re-encoded as chunked (rechunk) or raw.
func (c *conn) copyChunked(src *bufio.Reader, rechunk bool) (written int64, rerr, werr error) {
	bw := c.bw
	cr := &c.ucr
	cr.reset(src, c.s.cfg.MaxResponseHeaderBytes)
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var tmp [20]byte
	for {
		if src.Buffered() == 0 && bw.Buffered() > 0 {
			if werr = bw.Flush(); werr != nil {
				return written, nil, werr
			}
		}
		k, err := cr.Read(buf)
		if k > 0 {
			if rechunk {
				h := appendChunkHeader(tmp[:0], k)
				bw.Write(h)
				written += int64(len(h)) + 2
			}
			bw.Write(buf[:k])
			if rechunk {
				_, werr = bw.WriteString("\r\n")
			}
			if werr != nil {
				return written, nil, werr
			}
			written += int64(k)
		}
		if err == io.EOF {
			if rechunk {
				bw.WriteString("0\r\n")
				bw.Write(cr.trailer)
				_, werr = bw.WriteString("\r\n")
				written += int64(5 + len(cr.trailer))
			}
			return written, nil, werr
		}
		if err != nil {
			return written, err, nil
		}
	}
}

var statusText = map[int]string{
	400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
	413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
	500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
	503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

// writeError writes a short plain-text response and flushes it.
func (c *conn) writeError(status int, msg string, closeConn bool) int64 {
	return c.writeLocal(&LocalResponse{Status: status, Body: msg + "\n"}, closeConn)
}

// writeLocal writes a locally generated response and flushes it.
func (c *conn) writeLocal(l *LocalResponse, closeConn bool) int64 {
	bw := c.bw
	before := bw.Buffered()
	status := l.Status
	if status == 0 {
		status = 503
	}
	var nb [20]byte
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(nb[:0], int64(status), 10))
	bw.WriteString(" ")
	bw.WriteString(statusText[status])
	bw.WriteString("\r\n")
	hasCT := false
	for _, kv := range l.Header {
		if equalFold([]byte(kv[0]), "content-type") {
			hasCT = true
		}
		if !validFieldLine([]byte(kv[0] + ":" + kv[1])) {
			continue
		}
		bw.WriteString(kv[0])
		bw.WriteString(": ")
		bw.WriteString(kv[1])
		bw.WriteString("\r\n")
	}
	if !hasCT {
		bw.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	bw.WriteString("Content-Length: ")
	bw.Write(strconv.AppendInt(nb[:0], int64(len(l.Body)), 10))
	bw.WriteString("\r\n")
	if closeConn {
		bw.WriteString("Connection: close\r\n")
	} else if c.req.minor == 0 && c.req.Proto != "" {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if c.req.Method != "HEAD" {
		bw.WriteString(l.Body)
	}
	n := int64(bw.Buffered() - before)
	bw.Flush()
	return n
}

// putUp releases the upstream conn in use by c.
func (c *conn) putUp(uc *upConn, reusable bool) {
	c.up.Store(nil)
	uc.u.put(uc, reusable)
}
