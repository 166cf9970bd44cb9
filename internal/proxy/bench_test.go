package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
)

// rawHTTPBackend answers every request with a fixed 64-byte body, without
// allocating per request (so allocs/op measure the engine).
func rawHTTPBackend(b *testing.B) string {
	b.Helper()
	body := bytes.Repeat([]byte("x"), 64)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	return serveTCP(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// benchDirector returns one shared plan: no allocation per request.
type benchDirector struct{ p benchPlan }

type benchPlan struct{ u *Upstream }

func (d *benchDirector) Direct(*Request) (Plan, *LocalResponse) { return &d.p, nil }
func (p *benchPlan) Next(n int, _ Outcome) (*Upstream, bool)    { return p.u, n == 0 }
func (p *benchPlan) Done(Outcome, int)                          {}

func BenchmarkProxyGET(b *testing.B) {
	u := NewUpstream(rawHTTPBackend(b), UpstreamOptions{})
	defer u.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(Config{Director: &benchDirector{p: benchPlan{u: u}}})
	go s.Serve(l)
	defer s.Shutdown(b.Context())

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	// Response size: read one to learn it.
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	size := readResponseSize(b, br)
	buf := make([]byte, size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// readResponseSize reads one response with a Content-Length and returns its
// total size in bytes.
func readResponseSize(b *testing.B, br *bufio.Reader) int {
	n, cl := 0, 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		n += len(line)
		if len(line) > 16 && (line[:16] == "Content-Length: " || line[:16] == "content-length: ") {
			cl, _ = strconv.Atoi(line[16 : len(line)-2])
		}
		if line == "\r\n" {
			break
		}
	}
	if _, err := br.Discard(cl); err != nil {
		b.Fatal(err)
	}
	return n + cl
}
