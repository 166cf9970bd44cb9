package gateway

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/balance"
	"github.com/herd-cluster/herd/internal/proxy"
	"github.com/herd-cluster/herd/internal/spec"
)

// Direct implements proxy.Director: it routes a request to its service
// and returns the plan that picks its backends.
// HTTP/1.1 requests to a service whose backends speak h2c are refused
// (502): the engine speaks only HTTP/1.1 upstream.
func (g *Gateway) Direct(r *proxy.Request) (proxy.Plan, *proxy.LocalResponse) {
	p, local := g.direct(r, false)
	if p == nil {
		return nil, local
	}
	return p, nil
}

// direct routes r; std says the caller forwards with the standard library
// (and so can reach h2c backends).
func (g *Gateway) direct(r *proxy.Request, std bool) (*plan, *proxy.LocalResponse) {
	t := g.table.Load()
	if t == nil {
		return nil, &proxy.LocalResponse{Status: 404, Body: "herd: no route for this host and path\n"}
	}
	s, ok := t.http.Match(r.Host, r.Target)
	if !ok {
		return nil, &proxy.LocalResponse{Status: 404, Body: "herd: no route for this host and path\n"}
	}
	if !std && s.h2c {
		return nil, &proxy.LocalResponse{Status: 502, Body: "herd: service " + s.spec.Name + " speaks h2c to its backends: use HTTP/2\n"}
	}
	pk := s.pick.Load()
	if pk == nil || pk.size == 0 {
		s.m.noBackend.Inc()
		return nil, &proxy.LocalResponse{Status: 503, Body: "herd: service " + s.spec.Name + " has no available backend\n"}
	}
	p := planPool.Get().(*plan)
	p.s, p.pk, p.req = s, pk, r
	p.key = s.hashKey(r)
	p.start = time.Now()
	s.budget.request(p.start.Unix())
	return p, nil
}

// hashKey computes the consistent-hash key of a request.
func (s *service) hashKey(r *proxy.Request) uint64 {
	switch s.hashSource {
	case "":
		return 0
	case "header":
		return balance.HashKey(r.Header(s.hashName))
	case "cookie":
		return balance.HashKey(r.Cookie(s.hashName))
	case "source_ip":
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return balance.HashKey(host)
	case "path":
		return balance.HashKey(r.Path())
	}
	return 0
}

// plan is one request's journey through a service's backends.
type plan struct {
	s     *service
	pk    *picker
	req   *proxy.Request // valid until Done, as the engine promises
	key   uint64
	start time.Time

	tried    [spec.MaxAttempts]*backend
	nTried   int
	cur      *backend
	observed bool
}

var planPool = sync.Pool{New: func() any { return new(plan) }}

func (p *plan) wasTried(ep *balance.Endpoint) bool {
	for _, b := range p.tried[:p.nTried] {
		if b.ep == ep {
			return true
		}
	}
	return false
}

// Next implements proxy.Plan.
func (p *plan) Next(n int, prev proxy.Outcome) (*proxy.Upstream, bool) {
	// A backend removed after this plan picked it has its upstream closed:
	// nothing was sent, and the request is routed again on the current
	// table (its service may have a new version) without spending the
	// retry budget.
	removed := n > 0 && prev.ConnectErr && errors.Is(prev.Err, proxy.ErrUpstreamClosed)
	if n > 0 {
		p.observe(prev)
		if !p.retryable(n, prev) {
			return nil, false
		}
	}
	if removed {
		p.reroute()
	}
	var skip func(*balance.Endpoint) bool
	if p.nTried > 0 {
		skip = p.wasTried
	}
	ep := p.pk.bal.Pick(p.key, skip)
	if ep == nil {
		return nil, false
	}
	b := p.pk.byEP[ep]
	if n > 0 && !removed {
		if !p.s.budget.spend() {
			p.s.m.budgetExhausted.Inc()
			return nil, false
		}
		p.s.m.retries.Inc()
	}
	p.tried[p.nTried] = b
	p.nTried++
	p.cur, p.observed = b, false
	b.ep.Begin()
	b.requests.Add(1)
	return b.up, true
}

// reroute points the plan at the current version of its route's service
// and that service's current backends.
func (p *plan) reroute() {
	if t := p.s.g.table.Load(); t != nil {
		if s, ok := t.http.Match(p.req.Host, p.req.Target); ok {
			p.s = s
		}
	}
	if pk := p.s.pick.Load(); pk != nil {
		p.pk = pk
	}
}

// retryable decides whether attempt n may follow an attempt that ended
// with prev. Connection failures are always retried (nothing was sent);
// 5xx answers, timeouts and broken connections only for idempotent
// methods, since the backend may have acted on the request.
func (p *plan) retryable(n int, prev proxy.Outcome) bool {
	if n >= p.s.attempts || time.Since(p.start) >= p.s.requestTimeout {
		return false
	}
	switch {
	case prev.ConnectErr:
		return true
	case prev.Timeout:
		return p.s.retryTime && p.req.Idempotent()
	case prev.Status >= 500:
		return p.s.retry5xx && p.req.Idempotent()
	case prev.Err != nil:
		return p.req.Idempotent() && !prev.BodySent
	}
	return false
}

// observe feeds an attempt's outcome to the backend's load and health.
func (p *plan) observe(o proxy.Outcome) {
	b := p.cur
	if b == nil || p.observed {
		return
	}
	p.observed = true
	b.ep.End(o.Duration)
	switch {
	case o.ConnectErr:
		if errors.Is(o.Err, proxy.ErrMaxConns) || errors.Is(o.Err, proxy.ErrMaxRequests) {
			b.m.breaker.Inc()
		} else if !errors.Is(o.Err, proxy.ErrUpstreamClosed) {
			b.target.ObserveConnectFailure()
			b.m.connectErrors.Inc()
		}
	case o.Timeout:
		b.target.Observe5xx()
		b.m.timeouts.Inc()
	case o.Status >= 500:
		b.target.Observe5xx()
	case o.Err != nil:
		b.target.ObserveConnectFailure()
	default:
		b.target.ObserveSuccess()
	}
	if o.Status > 0 {
		b.m.status(o.Status).Inc()
		b.m.latency.Observe(o.Duration.Seconds())
	}
}

// Done implements proxy.Plan.
func (p *plan) Done(final proxy.Outcome, attempts int) {
	p.observe(final)
	p.s.m.requests.Inc()
	if final.Status == 0 {
		p.s.m.failed.Inc()
	}
	*p = plan{}
	planPool.Put(p)
}

// Failure implements the engine's optional failure answer: when every
// try failed to connect, say which service had no reachable backend.
func (p *plan) Failure(last proxy.Outcome) *proxy.LocalResponse {
	if !last.ConnectErr {
		return nil
	}
	return &proxy.LocalResponse{Status: 503, Body: fmt.Sprintf("herd: service %s: no backend could be reached (%d tried)\n", p.s.spec.Name, p.nTried)}
}
