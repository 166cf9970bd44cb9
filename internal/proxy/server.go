package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Config configures a Server. Zero values mean the defaults noted.
type Config struct {
	// Director routes requests; required.
	Director Director
	// ReadHeaderTimeout bounds the arrival of a whole request header, from
	// its first byte (slowloris protection); default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive client connection idle between
	// requests for this long; default 60s. It also bounds inactivity in
	// both directions of an upgraded (tunnelled) connection.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits the request header block; default 32 KiB. A
	// larger one is answered with 431 and the connection is closed.
	MaxHeaderBytes int
	// MaxResponseHeaderBytes limits a backend's response header block;
	// default 64 KiB. A larger one fails the attempt (502).
	MaxResponseHeaderBytes int
	// ForwardedProto is the X-Forwarded-Proto value; default "https" for
	// TLS connections and "http" otherwise.
	ForwardedProto string
	// AccessLog, if not nil, is called after each request (from the
	// connection's goroutine; the entry is valid only during the call).
	AccessLog func(*AccessEntry)
	// Logger receives connection-level errors; nil means slog.Default().
	Logger *slog.Logger
	// H2C, if not nil, takes over connections that start with the HTTP/2
	// client preface (h2c with prior knowledge). It is called from the
	// connection's goroutine once the engine has let go of the connection
	// (Shutdown no longer waits for it); the returned-to reads replay the
	// preface bytes the engine already read. It may serve the connection
	// to its end and must close it. Nil: such connections are answered 505
	// like any other HTTP version the engine does not speak.
	H2C func(c net.Conn)
}

func (c *Config) setDefaults() {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 32 << 10
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server serves HTTP/1.x clients on listeners or single connections and
// proxies their requests as its Director says. It is safe for concurrent
// use.
type Server struct {
	cfg      Config
	shutting atomic.Bool

	// mu guards the fields below.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	done      chan struct{} // closed when the last conn ends during shutdown
}

// NewServer returns a Server for c.
func NewServer(c Config) *Server {
	c.setDefaults()
	return &Server{cfg: c, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
}

// Serve accepts connections on l and serves each in its own goroutine. It
// returns ErrServerClosed after Shutdown, or the accept error that stopped
// it. l is closed when Serve returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Anything else (EMFILE, ECONNABORTED, ...) may pass: back off.
			if delay == 0 {
				s.cfg.Logger.Warn("proxy: accept failed, backing off", "err", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := s.newConn(nc)
		if c == nil {
			continue
		}
		go c.serve()
	}
}

// ServeConn serves one already-accepted connection (for example a TLS
// connection whose handshake chose http/1.1) and returns when it is closed.
func (s *Server) ServeConn(nc net.Conn) {
	if c := s.newConn(nc); c != nil {
		c.serve()
	}
}

// ActiveConns returns the number of client connections being served.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, closes idle client connections, lets in-flight
// requests finish (their connections close after the response) and waits
// for all connections to end. When ctx ends first it closes the remaining
// connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	if s.done == nil {
		s.done = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.done)
		}
	}
	done := s.done
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()

	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
		if uc := c.up.Load(); uc != nil {
			uc.nc.Close() // unblock a wait for the backend
		}
	}
	s.mu.Unlock()
	<-done
	return fmt.Errorf("shutdown: %w", ctx.Err())
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := connPool.Get().(*conn)
	c.init(s, nc)
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		nc.Close()
		c.release()
		return nil
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.done != nil && len(s.conns) == 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
	s.mu.Unlock()
}

// Connection states, for Shutdown.
const (
	stateActive int32 = iota
	stateIdle
	stateClosing
)

// conn is one client connection and all its reusable buffers.
type conn struct {
	s          *Server
	nc         net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	state      atomic.Int32
	up         atomic.Pointer[upConn] // the upstream conn in use, for a forced shutdown
	remoteAddr string
	clientIP   string
	tls        bool
	proto      string // X-Forwarded-Proto

	req     Request
	head    []byte // request header block
	out     []byte // upstream request: header block + buffered body
	body    []byte // buffered request body (decoded)
	rhead   []byte // response header block
	rfields []field
	reqID   []byte
	cr      chunkedReader
	ucr     chunkedReader
	entry   AccessEntry
	handoff net.Conn // set when the connection goes to Config.H2C

	// Per-request state.
	bodyDone  bool // c.body holds the whole request body
	streamed  bool // body bytes beyond c.body were read from the client
	rstatus   int
	rgot      bool // some response bytes arrived on the current attempt
	rchunked  bool
	rcl       int64 // response Content-Length, -1 if none
	rclose    bool  // the backend will close after the response
	rconnTok  []span
	rupgrade  span
	rstatusLo int // offset in rhead of the status code
	rstatusHi int // end of the status line (before CR LF)
}

var connPool = sync.Pool{New: func() any {
	return &conn{
		br:   bufio.NewReaderSize(nil, 4096),
		head: make([]byte, 0, 1024),
		out:  make([]byte, 0, 1024),
	}
}}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

func (c *conn) init(s *Server, nc net.Conn) {
	c.s, c.nc = s, nc
	c.br.Reset(nc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	c.state.Store(stateActive)
	c.remoteAddr = nc.RemoteAddr().String()
	c.clientIP = c.remoteAddr
	if h, _, err := net.SplitHostPort(c.remoteAddr); err == nil {
		c.clientIP = h
	}
	_, c.tls = nc.(*tls.Conn)
	c.proto = s.cfg.ForwardedProto
	if c.proto == "" {
		c.proto = "http"
		if c.tls {
			c.proto = "https"
		}
	}
}

func (c *conn) release() {
	c.s, c.nc = nil, nil
	c.br.Reset(nil)
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
	c.req = Request{fields: c.req.fields[:0], connTok: c.req.connTok[:0]}
	if cap(c.body) > 256<<10 {
		c.body = nil
	}
	c.entry = AccessEntry{}
	connPool.Put(c)
}

// closeIfIdle closes the connection if it waits between requests; a busy
// one notices the shutdown after its response.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosing) {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

func (c *conn) serve() {
	s := c.s
	defer func() {
		if v := recover(); v != nil {
			// A panic (in the Director, say) ends this connection only.
			s.cfg.Logger.Error("proxy: panic serving connection", "remote", c.remoteAddr, "panic", v, "stack", string(debug.Stack()))
			if uc := c.up.Swap(nil); uc != nil {
				uc.nc.Close()
			}
		}
		h := c.handoff
		c.handoff = nil
		if h == nil {
			c.nc.Close()
		}
		s.removeConn(c)
		c.release()
		if h != nil {
			s.cfg.H2C(h)
		}
	}()
	for {
		if c.br.Buffered() == 0 {
			// The idle deadline is set before the connection is marked
			// idle: Shutdown's closeIfIdle sets a deadline in the past
			// after it sees the mark, and it must not be overwritten, or
			// the connection waits out the whole idle timeout.
			c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			c.state.Store(stateIdle)
			if s.shutting.Load() {
				return
			}
			// An idle connection does not hold a write buffer.
			c.bw.Reset(nil)
			writerPool.Put(c.bw)
			c.bw = nil
			_, err := c.br.Peek(1)
			c.bw = writerPool.Get().(*bufio.Writer)
			c.bw.Reset(c.nc)
			if err != nil || !c.state.CompareAndSwap(stateIdle, stateActive) {
				return
			}
		}
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
		if !c.handle() {
			return
		}
		if s.shutting.Load() {
			return
		}
	}
}

// readHead reads the request header block into c.head, skipping leading
// empty lines (RFC 9112 2.2).
func (c *conn) readHead() error {
	c.head = c.head[:0]
	max := c.s.cfg.MaxHeaderBytes
	// Fast path: the whole header is already buffered.
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		if b[0] != '\r' && b[0] != '\n' {
			if i := indexHeaderEnd(b); i > 0 && i <= max {
				c.head = append(c.head, b[:i]...)
				c.br.Discard(i)
				return nil
			}
		}
	}
	for {
		line, err := c.br.ReadSlice('\n')
		if len(c.head)+len(line) > max {
			return errHeaderTooLarge
		}
		if err == bufio.ErrBufferFull {
			c.head = append(c.head, line...)
			continue
		}
		if err != nil {
			return err
		}
		if len(c.head) == 0 && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			continue // leading empty line
		}
		c.head = append(c.head, line...)
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			// An empty line ends the header unless it is a continuation of a
			// line read in pieces.
			n := len(c.head) - len(line)
			if n > 0 && c.head[n-1] == '\n' {
				return nil
			}
		}
	}
}

// indexHeaderEnd returns the length of the header block at the start of b
// (up to and including the empty line), or -1.
func indexHeaderEnd(b []byte) int {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}
