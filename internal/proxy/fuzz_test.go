package proxy

import (
	"bytes"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://h:80/x HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.0\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		// The reader hands the parser a block ending at the first empty line.
		end := indexHeaderEnd(data)
		if end < 0 {
			end = len(data)
		}
		head := append([]byte(nil), data[:end]...)
		if err := parseRequestHead(head, &r); err != nil {
			if _, ok := err.(*httpError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		bad := func(s []byte) bool { return bytes.ContainsAny(s, "\r\n\x00") }
		for _, f := range r.fields {
			if bad(r.bytes(f.name)) || bad(r.bytes(f.value)) || len(r.bytes(f.name)) == 0 {
				t.Fatalf("field %q: %q", r.bytes(f.name), r.bytes(f.value))
			}
		}
		for _, s := range []string{r.Method, r.Target, r.Host, r.Upgrade} {
			if bad([]byte(s)) || bytes.ContainsAny([]byte(s), " ") && s != r.Upgrade {
				t.Fatalf("bad string %q", s)
			}
		}
		if r.Target != "*" && (len(r.Target) == 0 || r.Target[0] != '/') {
			t.Fatalf("target %q", r.Target)
		}
		// Consistent framing: exactly one of none, length, chunked.
		var cl, te int
		for _, f := range r.fields {
			switch headerCode(r.bytes(f.name)) {
			case hContentLength:
				cl++
			case hTransferEncoding:
				te++
			}
		}
		switch {
		case r.chunked && (r.ContentLength != -1 || te != 1 || cl != 0):
			t.Fatalf("chunked with CL=%d te=%d cl=%d", r.ContentLength, te, cl)
		case !r.chunked && (r.ContentLength < 0 || te != 0):
			t.Fatalf("CL=%d te=%d", r.ContentLength, te)
		case !r.chunked && cl == 0 && r.ContentLength != 0:
			t.Fatalf("CL=%d without a Content-Length field", r.ContentLength)
		}
		if r.Proto == "HTTP/1.1" && r.Host == "" && r.Header("Host") == "" && !r.absHost {
			// An empty Host field is allowed; a missing one is not.
			found := false
			for _, f := range r.fields {
				if headerCode(r.bytes(f.name)) == hHost {
					found = true
				}
			}
			if !found {
				t.Fatal("HTTP/1.1 request without Host accepted")
			}
		}
	})
}
