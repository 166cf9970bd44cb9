package gateway

import (
	"errors"
	"net"
	"sync"

	"github.com/herd-cluster/herd/internal/balance"
	"github.com/herd-cluster/herd/internal/proxy"
)

// serveTCP accepts connections on a TCP listener and proxies each to a
// backend of the service routed to port, until the listener closes.
// Connection goroutines are owned by the gateway's WaitGroup and end
// when the gateway's context is cancelled.
func (g *Gateway) serveTCP(ln net.Listener, port int) {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				g.logger.Error("gateway: TCP listener stopped", "port", port, "err", err)
			}
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			g.proxyTCP(c, port)
		}()
	}
}

func (g *Gateway) proxyTCP(c net.Conn, port int) {
	t := g.table.Load()
	var s *service
	if t != nil {
		s, _ = t.http.MatchPort(port)
	}
	if s == nil {
		g.logger.Debug("gateway: no TCP service on port", "port", port)
		c.Close()
		return
	}
	pk := s.pick.Load()
	if pk == nil || pk.size == 0 {
		s.m.noBackend.Inc()
		c.Close()
		return
	}
	s.m.requests.Inc()
	var tried []*balance.Endpoint
	var cur *backend
	pick := func(attempt int) (*proxy.Upstream, bool) {
		if cur != nil {
			// The previous attempt could not connect.
			cur.target.ObserveConnectFailure()
			cur.ep.End(0)
			cur = nil
		}
		if attempt >= s.attempts {
			return nil, false
		}
		ep := pk.bal.Pick(0, func(e *balance.Endpoint) bool {
			for _, t := range tried {
				if t == e {
					return true
				}
			}
			return false
		})
		if ep == nil {
			return nil, false
		}
		tried = append(tried, ep)
		cur = pk.byEP[ep]
		cur.ep.Begin()
		cur.requests.Add(1)
		return cur.up, true
	}
	res := proxy.ProxyTCP(g.ctx, c, pick, s.spec.Timeouts.Idle.D())
	if cur != nil {
		cur.ep.End(res.Duration)
		if res.ConnectErr {
			cur.target.ObserveConnectFailure()
		} else {
			cur.target.ObserveSuccess()
		}
	}
	if res.ConnectErr {
		s.m.failed.Inc()
	}
}
