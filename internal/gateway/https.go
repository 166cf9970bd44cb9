package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2Conns tracks the HTTP/2 client connections (TLS h2 and h2c), which
// the engine's Shutdown does not see.
type h2Conns struct {
	srv *http2.Server
	hs  *http.Server // carries srv's graceful shutdown (GOAWAY)
	wg  sync.WaitGroup

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newH2Conns(idle time.Duration) *h2Conns {
	h := &h2Conns{srv: &http2.Server{IdleTimeout: idle}, hs: &http.Server{}, conns: map[net.Conn]struct{}{}}
	// ConfigureServer only wires the graceful shutdown into hs here; it
	// fails only when hs has an unsuitable TLS config, and hs has none.
	_ = http2.ConfigureServer(h.hs, h.srv)
	return h
}

// serveH2 serves an HTTP/2 client connection through the gateway until it
// ends. proto is the X-Forwarded-Proto of its requests.
func (g *Gateway) serveH2(c net.Conn, proto string) {
	h := g.h2
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		c.Close()
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.wg.Done()
	}()
	h.srv.ServeConn(c, &http2.ServeConnOpts{Context: g.ctx, BaseConfig: h.hs, Handler: &stdHandler{g: g, proto: proto}})
}

// shutdown asks every HTTP/2 connection to finish (GOAWAY) and waits for
// them; when ctx ends first it closes them.
func (h *h2Conns) shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = h.hs.Shutdown(sctx) // runs the GOAWAY hook; hs has no listener or conn of its own
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	<-done
	return ctx.Err()
}

// serveHTTPS accepts TLS connections until the listener closes. After the
// handshake (at most handshakeTimeout) ALPN h2 goes to the HTTP/2 server,
// anything else to the engine as HTTP/1.1.
func (g *Gateway) serveHTTPS(ln net.Listener) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				g.logger.Error("gateway: HTTPS listener stopped", "err", err)
			}
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			g.serveTLSConn(c)
		}()
	}
}

func (g *Gateway) serveTLSConn(c net.Conn) {
	tc := tls.Server(c, g.tlsConf)
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.TLSHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		g.logger.Debug("gateway: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
		g.serveH2(tc, "https")
		return
	}
	g.httpsSrv.ServeConn(tc)
}

// serveH2C takes over a plain connection that began with the HTTP/2
// preface (the engine's H2C hook).
func (g *Gateway) serveH2C(c net.Conn) { g.serveH2(c, "http") }

// HTTPSAddr is the bound HTTPS listener's address ("" if none).
func (g *Gateway) HTTPSAddr() string {
	if g.httpsLn == nil {
		return ""
	}
	return g.httpsLn.Addr().String()
}
