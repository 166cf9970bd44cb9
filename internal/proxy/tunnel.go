package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

type closeWriter interface{ CloseWrite() error }

// pipe copies a→b and b→a (reading through ar and br, which may hold
// buffered bytes) until both directions ended. EOF on one side half-closes
// the other (CloseWrite); an error closes both. The tunnel is closed when
// neither direction moved a byte for idle. It returns the byte counts and
// the first error other than EOF or the idle timeout.
func pipe(a net.Conn, ar io.Reader, b net.Conn, br io.Reader, idle time.Duration) (aToB, bToA int64, err error) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := copyDir(b, br, a, idle, &last)
		done <- result{n, err}
	}()
	aToB, err1 := copyDir(a, ar, b, idle, &last)
	res := <-done
	bToA = res.n
	return aToB, bToA, errors.Join(err1, res.err)
}

// copyDir copies src (read through sr) to dst. On EOF it half-closes dst;
// on any other error it closes both, which also ends the other direction.
func copyDir(src net.Conn, sr io.Reader, dst net.Conn, idle time.Duration, last *atomic.Int64) (int64, error) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Now().Add(idle))
		}
		k, err := sr.Read(buf)
		if k > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:k]); werr != nil {
				src.Close()
				dst.Close()
				return n, fmt.Errorf("tunnel write: %w", werr)
			}
			n += int64(k)
		}
		if err == nil {
			continue
		}
		if isTimeout(err) && idle > 0 && time.Since(time.Unix(0, last.Load())) < idle {
			continue // the other direction is active
		}
		if err == io.EOF {
			if cw, ok := dst.(closeWriter); ok {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return n, nil
		}
		src.Close()
		dst.Close()
		if isTimeout(err) || errors.Is(err, net.ErrClosed) {
			return n, nil
		}
		return n, fmt.Errorf("tunnel read: %w", err)
	}
}

// TCPResult reports one proxied TCP session.
type TCPResult struct {
	// Upstream is the upstream connected to (the last one tried on failure).
	Upstream *Upstream
	// Attempts is the number of upstreams tried.
	Attempts int
	// ConnectErr reports that no upstream could be connected.
	ConnectErr bool
	// Err is the last connect error, or the first copy error.
	Err error
	// BytesIn counts client-to-upstream bytes, BytesOut the other way.
	BytesIn, BytesOut int64
	// Duration is the session's length.
	Duration time.Duration
}

// ProxyTCP connects client to an upstream chosen by pick (called with
// attempt 0, 1, ... until it returns ok=false; a connect failure moves to
// the next attempt), then copies bytes both ways until both sides have
// closed, half-closing properly, or until neither side sent anything for
// idle (0 = no idle limit). The connection counts toward the upstream's
// MaxConns and MaxRequests and is never pooled. ProxyTCP closes client
// before returning; cancelling ctx ends the session.
func ProxyTCP(ctx context.Context, client net.Conn, pick func(attempt int) (*Upstream, bool), idle time.Duration) TCPResult {
	start := time.Now()
	var res TCPResult
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	for {
		u, ok := pick(res.Attempts)
		if !ok {
			res.ConnectErr = true
			if res.Err == nil {
				res.Err = errors.New("no upstream available")
			}
			res.Duration = time.Since(start)
			return res
		}
		res.Attempts++
		res.Upstream = u
		if err := u.begin(); err != nil {
			res.Err = err
			continue
		}
		uc, err := u.get(ctx, false)
		if err != nil {
			u.end()
			res.Err = err
			continue
		}
		res.Err = nil
		stopU := context.AfterFunc(ctx, func() { uc.nc.Close() })
		res.BytesIn, res.BytesOut, res.Err = pipe(client, client, uc.nc, uc.nc, idle)
		stopU()
		uc.nc.Close()
		u.put(uc, false)
		u.end()
		res.Duration = time.Since(start)
		return res
	}
}
