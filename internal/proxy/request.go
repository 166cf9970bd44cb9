package proxy

import (
	"bytes"
	"net/http"
	"unsafe"
)

// Request is what the director sees of one client request. Its fields are
// valid only during the Direct call and the calls of the returned Plan; the
// engine owns the memory (strings point into a per-connection buffer).
type Request struct {
	// Method is the request method ("GET", ...); common methods are
	// interned strings.
	Method string
	// Target is the request-target in origin form ("/path?q"), or "*" for
	// OPTIONS. An absolute-form target is converted to origin form and its
	// authority becomes Host.
	Target string
	// Host is the Host header (or the authority of an absolute-form
	// target), without port normalisation.
	Host string
	// Proto is "HTTP/1.1" or "HTTP/1.0".
	Proto string
	// RemoteAddr is the client address (host:port).
	RemoteAddr string
	// TLS reports whether the client connection is TLS.
	TLS bool
	// ContentLength is the request body length; -1 when chunked.
	ContentLength int64
	// Upgrade is the Upgrade header (e.g. "websocket") when the client asks
	// for a protocol upgrade (Connection: upgrade), else "".
	Upgrade string

	raw       []byte  // the header block; strings point into it
	fields    []field // header fields, in order
	minor     byte    // HTTP minor version
	chunked   bool
	close     bool // the client asked to close after the response
	expect100 bool
	connTok   []span      // extra Connection tokens: header names to drop
	absHost   bool        // Host comes from an absolute-form target
	hdr       http.Header // set by RequestFromHTTP: Header and Cookie read it
}

type span struct{ lo, hi int32 }

type field struct{ name, value span }

func (r *Request) str(s span) string {
	if s.hi <= s.lo {
		return ""
	}
	return unsafe.String(&r.raw[s.lo], int(s.hi-s.lo))
}

func (r *Request) bytes(s span) []byte { return r.raw[s.lo:s.hi] }

// Header returns the first value of the named header (case-insensitive), ""
// if absent.
func (r *Request) Header(name string) string {
	if r.hdr != nil {
		return r.hdr.Get(name)
	}
	for _, f := range r.fields {
		if equalFold(r.bytes(f.name), name) {
			return r.str(f.value)
		}
	}
	return ""
}

// Cookie returns the value of the named cookie from the Cookie headers, ""
// if absent.
func (r *Request) Cookie(name string) string {
	if r.hdr != nil {
		for _, v := range r.hdr.Values("Cookie") {
			if val, ok := cookieValue(v, name); ok {
				return val
			}
		}
		return ""
	}
	for _, f := range r.fields {
		if !equalFold(r.bytes(f.name), "cookie") {
			continue
		}
		if val, ok := cookieValue(r.str(f.value), name); ok {
			return val
		}
	}
	return ""
}

// cookieValue finds the named cookie in one Cookie header value.
func cookieValue(v, name string) (string, bool) {
	for len(v) > 0 {
		var part string
		if i := indexByteString(v, ';'); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, ""
		}
		part = trimOWS(part)
		if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
			val := part[len(name)+1:]
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			return val, true
		}
	}
	return "", false
}

// Path returns Target without the query.
func (r *Request) Path() string {
	if i := indexByteString(r.Target, '?'); i >= 0 {
		return r.Target[:i]
	}
	return r.Target
}

// Idempotent reports whether the method is idempotent (GET, HEAD, OPTIONS,
// TRACE, PUT, DELETE).
func (r *Request) Idempotent() bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func (r *Request) hasBody() bool { return r.chunked || r.ContentLength > 0 }

// httpError is a request rejected by the engine, answered with status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var (
	errBadRequestLine = &httpError{400, "malformed request line"}
	errBadMethod      = &httpError{400, "malformed method"}
	errBadTarget      = &httpError{400, "malformed request target"}
	errBadVersion     = &httpError{400, "malformed HTTP version"}
	errVersion        = &httpError{505, "HTTP version not supported"}
	errBadHeader      = &httpError{400, "malformed header line"}
	errObsFold        = &httpError{400, "obsolete line folding"}
	errBadValue       = &httpError{400, "invalid character in header value"}
	errHeaderTooLarge = &httpError{431, "request header too large"}
	errBadCL          = &httpError{400, "invalid Content-Length"}
	errCLAndTE        = &httpError{400, "both Content-Length and Transfer-Encoding"}
	errTE             = &httpError{501, "unsupported Transfer-Encoding"}
	errBadTE          = &httpError{400, "invalid Transfer-Encoding"}
	errNoHost         = &httpError{400, "missing Host header"}
	errManyHosts      = &httpError{400, "multiple Host headers"}
	errBadHost        = &httpError{400, "invalid Host header"}
	errTooManyFields  = &httpError{431, "too many header fields"}
)

const maxFields = 256

// parseRequestHead parses a complete request header block (request line,
// fields, empty line; lines end in CRLF or LF) into r. r.raw must be head.
func parseRequestHead(head []byte, r *Request) error {
	r.raw = head
	r.fields = r.fields[:0]
	r.connTok = r.connTok[:0]
	r.Method, r.Target, r.Host, r.Proto, r.Upgrade = "", "", "", "", ""
	r.ContentLength = 0
	r.chunked, r.close, r.expect100, r.absHost = false, false, false, false

	// Request line.
	eol := bytes.IndexByte(head, '\n')
	if eol < 0 {
		return errBadRequestLine
	}
	line := head[:eol]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	method, target, version := line[:sp1], rest[:sp2], rest[sp2+1:]
	for _, c := range method {
		if !isTchar(c) {
			return errBadMethod
		}
	}
	r.Method = internMethod(method, r, 0)
	if len(version) != 8 || string(version[:5]) != "HTTP/" || version[6] != '.' ||
		!isDigit(version[5]) || !isDigit(version[7]) {
		return errBadVersion
	}
	if version[5] != '1' || (version[7] != '0' && version[7] != '1') {
		return errVersion
	}
	r.minor = version[7] - '0'
	if r.minor == 1 {
		r.Proto = "HTTP/1.1"
	} else {
		r.Proto = "HTTP/1.0"
		r.close = true
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return errBadTarget
		}
	}
	tlo := int32(sp1 + 1)
	switch {
	case target[0] == '/':
		r.Target = r.str(span{tlo, tlo + int32(len(target))})
	case len(target) == 1 && target[0] == '*' && r.Method == "OPTIONS":
		r.Target = "*"
	case len(target) > 7 && equalFoldBytes(target[:7], "http://"):
		auth := target[7:]
		p := bytes.IndexByte(auth, '/')
		if q := bytes.IndexByte(auth, '?'); q >= 0 && (p < 0 || q < p) {
			return errBadTarget
		}
		alo := tlo + 7
		if p < 0 {
			r.Host = r.str(span{alo, alo + int32(len(auth))})
			r.Target = "/"
		} else {
			r.Host = r.str(span{alo, alo + int32(p)})
			r.Target = r.str(span{alo + int32(p), alo + int32(len(auth))})
		}
		if r.Host == "" || !validHost(r.Host) {
			return errBadTarget
		}
		r.absHost = true
	default:
		return errBadTarget
	}

	// Header fields.
	pos := eol + 1
	hosts := 0
	var teSeen, clSeen, connUpgrade bool
	var upgrade string
	for {
		if pos >= len(head) {
			return errBadHeader // no terminating empty line
		}
		e := bytes.IndexByte(head[pos:], '\n')
		if e < 0 {
			return errBadHeader
		}
		lineLo, lineHi := pos, pos+e
		pos = lineHi + 1
		if lineHi > lineLo && head[lineHi-1] == '\r' {
			lineHi--
		}
		if lineHi == lineLo {
			break // end of header
		}
		line := head[lineLo:lineHi]
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadHeader
		}
		for _, c := range line[:colon] {
			if !isTchar(c) {
				return errBadHeader
			}
		}
		vlo, vhi := lineLo+colon+1, lineHi
		for vlo < vhi && (head[vlo] == ' ' || head[vlo] == '\t') {
			vlo++
		}
		for vhi > vlo && (head[vhi-1] == ' ' || head[vhi-1] == '\t') {
			vhi--
		}
		for _, c := range head[vlo:vhi] {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return errBadValue
			}
		}
		if len(r.fields) >= maxFields {
			return errTooManyFields
		}
		f := field{span{int32(lineLo), int32(lineLo + colon)}, span{int32(vlo), int32(vhi)}}
		r.fields = append(r.fields, f)
		name, value := line[:colon], head[vlo:vhi]
		switch headerCode(name) {
		case hHost:
			hosts++
			if hosts > 1 {
				return errManyHosts
			}
			if !r.absHost {
				if !validHost(string(value)) {
					return errBadHost
				}
				r.Host = r.str(f.value)
			}
		case hContentLength:
			n, ok := parseContentLength(value)
			if !ok {
				return errBadCL
			}
			if clSeen && n != r.ContentLength {
				return errBadCL
			}
			clSeen = true
			r.ContentLength = n
		case hTransferEncoding:
			if teSeen {
				return errBadTE
			}
			teSeen = true
			if !equalFoldBytes(value, "chunked") {
				return errTE
			}
			r.chunked = true
		case hConnection:
			if err := r.parseConnection(f.value, &connUpgrade); err != nil {
				return err
			}
		case hUpgrade:
			upgrade = r.str(f.value)
		case hExpect:
			if equalFoldBytes(value, "100-continue") {
				r.expect100 = true
			}
		}
	}
	if pos != len(head) {
		return errBadHeader // bytes after the empty line: caller bug or garbage
	}
	if teSeen && clSeen {
		return errCLAndTE
	}
	if r.chunked {
		if r.minor == 0 {
			return errBadTE // RFC 9112 6.1: chunked from an HTTP/1.0 client is faulty framing
		}
		r.ContentLength = -1
	}
	if hosts == 0 && r.minor == 1 && !r.absHost {
		return errNoHost
	}
	if connUpgrade && upgrade != "" {
		r.Upgrade = upgrade
	}
	return nil
}

// parseConnection records the Connection tokens: close, keep-alive, upgrade
// and names of other hop-by-hop fields.
func (r *Request) parseConnection(v span, upgrade *bool) error {
	i := v.lo
	for i < v.hi {
		j := i
		for j < v.hi && r.raw[j] != ',' {
			j++
		}
		lo, hi := i, j
		for lo < hi && (r.raw[lo] == ' ' || r.raw[lo] == '\t') {
			lo++
		}
		for hi > lo && (r.raw[hi-1] == ' ' || r.raw[hi-1] == '\t') {
			hi--
		}
		tok := r.raw[lo:hi]
		switch {
		case len(tok) == 0:
		case equalFoldBytes(tok, "close"):
			r.close = true
		case equalFoldBytes(tok, "keep-alive"):
			if r.minor == 0 {
				r.close = false
			}
		case equalFoldBytes(tok, "upgrade"):
			*upgrade = true
		default:
			for _, c := range tok {
				if !isTchar(c) {
					return errBadHeader
				}
			}
			if len(r.connTok) < 16 {
				r.connTok = append(r.connTok, span{lo, hi})
			}
		}
		i = j + 1
	}
	return nil
}

// internMethod returns a constant string for common methods, else a string
// pointing into r.raw at offset off.
func internMethod(m []byte, r *Request, off int) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "TRACE":
		return "TRACE"
	case "CONNECT":
		return "CONNECT"
	}
	return r.str(span{int32(off), int32(off + len(m))})
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost accepts reg-name, IPv4 and bracketed IPv6 hosts with an optional
// port: no whitespace, no control bytes, none of "/?#@\\".
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' || c == ',' {
			return false
		}
	}
	return true
}

// Header codes for fields the engine treats specially.
const (
	hOther = iota
	hHost
	hContentLength
	hTransferEncoding
	hConnection
	hKeepAlive
	hProxyConnection
	hTE
	hTrailer
	hUpgrade
	hExpect
	hXForwardedFor
	hXForwardedProto
	hXForwardedHost
	hForwarded
	hXRequestID
)

func headerCode(name []byte) int {
	switch len(name) {
	case 2:
		if equalFoldBytes(name, "te") {
			return hTE
		}
	case 4:
		if equalFoldBytes(name, "host") {
			return hHost
		}
	case 6:
		if equalFoldBytes(name, "expect") {
			return hExpect
		}
	case 7:
		if equalFoldBytes(name, "upgrade") {
			return hUpgrade
		}
		if equalFoldBytes(name, "trailer") {
			return hTrailer
		}
	case 9:
		if equalFoldBytes(name, "forwarded") {
			return hForwarded
		}
	case 10:
		if equalFoldBytes(name, "connection") {
			return hConnection
		}
		if equalFoldBytes(name, "keep-alive") {
			return hKeepAlive
		}
	case 12:
		if equalFoldBytes(name, "x-request-id") {
			return hXRequestID
		}
	case 14:
		if equalFoldBytes(name, "content-length") {
			return hContentLength
		}
	case 15:
		if equalFoldBytes(name, "x-forwarded-for") {
			return hXForwardedFor
		}
	case 16:
		if equalFoldBytes(name, "proxy-connection") {
			return hProxyConnection
		}
		if equalFoldBytes(name, "x-forwarded-host") {
			return hXForwardedHost
		}
	case 17:
		if equalFoldBytes(name, "transfer-encoding") {
			return hTransferEncoding
		}
		if equalFoldBytes(name, "x-forwarded-proto") {
			return hXForwardedProto
		}
	}
	return hOther
}

var tcharTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isTchar(c byte) bool { return tcharTable[c] }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldBytes reports whether b equals s ignoring ASCII case; s must be
// lower case.
func equalFoldBytes(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether b equals s ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func indexByteString(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
