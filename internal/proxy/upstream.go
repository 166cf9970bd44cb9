package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UpstreamOptions configures an Upstream. Zero values mean the defaults
// noted on each field.
type UpstreamOptions struct {
	// ConnectTimeout bounds a connection attempt; default 2s.
	ConnectTimeout time.Duration
	// ResponseTimeout is the per-try time from sending the request to the
	// end of the response header; 0 means none. When it expires the
	// upstream connection is closed and the attempt's Outcome has Timeout.
	ResponseTimeout time.Duration
	// MaxIdle is the number of idle keep-alive connections kept; default
	// 128. Too few makes a busy upstream reconnect constantly.
	MaxIdle int
	// IdleTimeout closes idle connections after this long; default 60s.
	IdleTimeout time.Duration
	// MaxConns is the circuit breaker on open connections (pooled, in use
	// and TCP-proxied); 0 means unlimited. Beyond it an attempt fails fast
	// with Outcome.ConnectErr and ErrMaxConns, unless a MaxPending slot is
	// free.
	MaxConns int
	// MaxPending is how many requests may wait (up to ConnectTimeout) for a
	// connection when MaxConns are open; 0 means none wait.
	MaxPending int
	// MaxRequests is the circuit breaker on in-flight requests; 0 means
	// unlimited. Beyond it an attempt fails fast with ErrMaxRequests.
	MaxRequests int
}

// Errors reported in Outcome.Err (wrapped) when an Upstream refuses a
// request without sending it.
var (
	// ErrMaxConns is the circuit breaker on UpstreamOptions.MaxConns.
	ErrMaxConns = errors.New("circuit breaker: max connections")
	// ErrMaxRequests is the circuit breaker on UpstreamOptions.MaxRequests.
	ErrMaxRequests = errors.New("circuit breaker: max requests")
	// ErrUpstreamClosed means the Upstream was closed.
	ErrUpstreamClosed = errors.New("upstream closed")
)

// UpstreamStats is a snapshot of an Upstream's counters.
type UpstreamStats struct {
	// Open is the number of open connections (idle, in use or tunnelled).
	Open int
	// Idle is the number of idle pooled connections.
	Idle int
	// InFlight is the number of requests (and TCP sessions) in progress.
	InFlight int
	// Requests is the total number of requests and TCP sessions started.
	Requests uint64
	// Dials is the total number of connections opened.
	Dials uint64
}

// Upstream is one backend address with its pool of keep-alive connections
// and its circuit breakers. The gateway keeps one per (service, backend)
// and closes it when the backend is removed. It is safe for concurrent use.
type Upstream struct {
	addr   string
	opts   UpstreamOptions
	dialer net.Dialer

	inflight atomic.Int64
	requests atomic.Uint64
	dials    atomic.Uint64

	// mu guards the pool state below.
	mu      sync.Mutex
	idle    []*upConn // LIFO: the most recently used conn is last
	open    int
	waiters []chan *upConn // FIFO of requests waiting at MaxConns
	closed  bool
	reaper  *time.Timer
}

// upConn is one connection to an upstream.
type upConn struct {
	u      *Upstream
	nc     net.Conn
	br     *bufio.Reader
	idleAt time.Time
	reused bool // served a request before: may be stale
}

// NewUpstream returns an Upstream for addr (host:port). It opens no
// connection until the first request.
func NewUpstream(addr string, o UpstreamOptions) *Upstream {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 128
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	return &Upstream{addr: addr, opts: o, dialer: net.Dialer{Timeout: o.ConnectTimeout}}
}

// Addr returns the upstream address.
func (u *Upstream) Addr() string { return u.addr }

// Stats returns a snapshot of the counters.
func (u *Upstream) Stats() UpstreamStats {
	u.mu.Lock()
	s := UpstreamStats{Open: u.open, Idle: len(u.idle)}
	u.mu.Unlock()
	s.InFlight = int(u.inflight.Load())
	s.Requests = u.requests.Load()
	s.Dials = u.dials.Load()
	return s
}

// Close closes the idle connections now; connections in use close when
// released, and new requests fail with ErrUpstreamClosed (ConnectErr).
func (u *Upstream) Close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	idle := u.idle
	u.idle = nil
	u.open -= len(idle)
	waiters := u.waiters
	u.waiters = nil
	if u.reaper != nil {
		u.reaper.Stop()
	}
	u.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
	for _, w := range waiters {
		close(w)
	}
}

// Drain waits until no request is in flight on u (or ctx is done), then
// closes it. It returns ctx's error if ctx ended first (u is closed anyway).
func (u *Upstream) Drain(ctx context.Context) error {
	defer u.Close()
	if u.inflight.Load() == 0 {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for u.inflight.Load() != 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s: %w", u.addr, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// begin counts a request in flight, enforcing MaxRequests.
func (u *Upstream) begin() error {
	n := u.inflight.Add(1)
	if u.opts.MaxRequests > 0 && n > int64(u.opts.MaxRequests) {
		u.inflight.Add(-1)
		return fmt.Errorf("%s: %w", u.addr, ErrMaxRequests)
	}
	u.requests.Add(1)
	return nil
}

func (u *Upstream) end() { u.inflight.Add(-1) }

// Acquire counts a request forwarded outside the engine (the gateway's
// HTTP/2 path) toward MaxRequests, failing with ErrMaxRequests (or
// ErrUpstreamClosed) as the engine's own requests do; Release ends it.
func (u *Upstream) Acquire() error {
	u.mu.Lock()
	closed := u.closed
	u.mu.Unlock()
	if closed {
		return fmt.Errorf("%s: %w", u.addr, ErrUpstreamClosed)
	}
	return u.begin()
}

// Release ends a request counted by Acquire.
func (u *Upstream) Release() { u.end() }

// get returns a pooled connection, or dials one. pooled=false forces a new
// connection (stale retry, TCP proxying).
func (u *Upstream) get(ctx context.Context, pooled bool) (*upConn, error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", u.addr, ErrUpstreamClosed)
	}
	if pooled {
		for n := len(u.idle); n > 0; n = len(u.idle) {
			c := u.idle[n-1]
			u.idle[n-1] = nil
			u.idle = u.idle[:n-1]
			if time.Since(c.idleAt) < u.opts.IdleTimeout {
				u.mu.Unlock()
				return c, nil
			}
			u.open--
			c.nc.Close()
		}
	}
	if u.opts.MaxConns > 0 && u.open >= u.opts.MaxConns {
		if len(u.waiters) >= u.opts.MaxPending {
			u.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", u.addr, ErrMaxConns)
		}
		w := make(chan *upConn, 1)
		u.waiters = append(u.waiters, w)
		u.mu.Unlock()
		return u.wait(ctx, w, pooled)
	}
	u.open++
	u.mu.Unlock()
	return u.dial(ctx)
}

// wait waits for a released connection (or a free slot, sent as nil).
func (u *Upstream) wait(ctx context.Context, w chan *upConn, pooled bool) (*upConn, error) {
	t := time.NewTimer(u.opts.ConnectTimeout)
	defer t.Stop()
	select {
	case c, ok := <-w:
		return u.handed(ctx, c, ok, pooled)
	case <-t.C:
	case <-ctx.Done():
	}
	u.mu.Lock()
	for i, x := range u.waiters {
		if x == w {
			u.waiters = append(u.waiters[:i], u.waiters[i+1:]...)
			u.mu.Unlock()
			return nil, fmt.Errorf("%s: %w (no connection freed within the connect timeout)", u.addr, ErrMaxConns)
		}
	}
	u.mu.Unlock()
	// Handed over concurrently with the timeout: take it.
	c, ok := <-w
	return u.handed(ctx, c, ok, pooled)
}

func (u *Upstream) handed(ctx context.Context, c *upConn, ok, pooled bool) (*upConn, error) {
	if !ok {
		return nil, fmt.Errorf("%s: %w", u.addr, ErrUpstreamClosed)
	}
	if c != nil {
		if pooled {
			return c, nil
		}
		c.nc.Close() // a slot for a fresh connection
	}
	return u.dial(ctx)
}

// dial opens a connection; the caller has already counted it in u.open.
func (u *Upstream) dial(ctx context.Context) (*upConn, error) {
	nc, err := u.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		u.releaseSlot()
		return nil, fmt.Errorf("connect %s: %w", u.addr, err)
	}
	u.dials.Add(1)
	return &upConn{u: u, nc: nc, br: bufio.NewReaderSize(nc, 4096)}, nil
}

// releaseSlot gives up one open-connection slot, waking a waiter.
func (u *Upstream) releaseSlot() {
	u.mu.Lock()
	if len(u.waiters) > 0 && !u.closed {
		w := u.waiters[0]
		u.waiters = u.waiters[1:]
		u.mu.Unlock()
		w <- nil // the slot moves to the waiter, which dials
		return
	}
	u.open--
	u.mu.Unlock()
}

// put returns c to the pool when reusable, else closes it.
func (u *Upstream) put(c *upConn, reusable bool) {
	if !reusable {
		c.nc.Close()
		u.releaseSlot()
		return
	}
	c.reused = true
	u.mu.Lock()
	if u.closed {
		u.open--
		u.mu.Unlock()
		c.nc.Close()
		return
	}
	if len(u.waiters) > 0 {
		w := u.waiters[0]
		u.waiters = u.waiters[1:]
		u.mu.Unlock()
		w <- c
		return
	}
	if len(u.idle) >= u.opts.MaxIdle {
		u.open--
		u.mu.Unlock()
		c.nc.Close()
		return
	}
	c.idleAt = time.Now()
	u.idle = append(u.idle, c)
	if u.reaper == nil {
		u.reaper = time.AfterFunc(u.opts.IdleTimeout, u.reap)
	}
	u.mu.Unlock()
}

// reap closes connections idle for longer than IdleTimeout. The idle list is
// ordered oldest first.
func (u *Upstream) reap() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	var old []*upConn
	n := 0
	for n < len(u.idle) && time.Since(u.idle[n].idleAt) >= u.opts.IdleTimeout {
		n++
	}
	if n > 0 {
		old = append(old, u.idle[:n]...)
		rest := copy(u.idle, u.idle[n:])
		clear(u.idle[rest:])
		u.idle = u.idle[:rest]
		u.open -= n
	}
	if len(u.idle) > 0 {
		u.reaper.Reset(u.opts.IdleTimeout - time.Since(u.idle[0].idleAt) + time.Millisecond)
	} else {
		u.reaper = nil // put arms a new one
	}
	u.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
}
