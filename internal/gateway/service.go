package gateway

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/balance"
	"github.com/herd-cluster/herd/internal/health"
	"github.com/herd-cluster/herd/internal/proxy"
	"github.com/herd-cluster/herd/internal/spec"
)

// service is one service as this gateway runs it. Its spec never changes:
// a changed spec becomes a new service that takes over the backends whose
// settings did not change (their endpoints keep their load figures, their
// upstreams their connections, their health its state).
type service struct {
	g *Gateway
	// modifyIndex is the stored spec's Raft index, to spot changes.
	modifyIndex uint64
	// groupKey and upKey encode the settings the health group and the
	// backends' upstreams were made with, to keep them when unchanged.
	groupKey, upKey string
	// current points at the newest service built on this health group;
	// the group's change callback rebuilds that one. A service rebuilt
	// with unchanged checks takes the group over, and the group must
	// then change the new service's routing, not the retired one's.
	current *atomic.Pointer[service]
	spec    api.Service // defaults filled in
	// hashed is the consistent-hash key source, "" when not hashing.
	hashSource, hashName string
	attempts             int
	retry5xx, retryTime  bool
	requestTimeout       time.Duration
	perTry               time.Duration
	// h2c: the backends speak HTTP/2 without TLS (backend_protocol h2c).
	h2c bool

	group *health.Group

	// mu guards backends; the picker is rebuilt under it.
	mu       sync.Mutex
	backends map[string]*backend
	order    []*backend

	pick   atomic.Pointer[picker]
	budget retryBudget
	m      *serviceMetrics
}

// backend is one backend of one service on this gateway.
type backend struct {
	spec api.Backend
	ep   *balance.Endpoint
	up   *proxy.Upstream
	// std forwards requests of HTTP/2 clients; it lives as long as up.
	std    *stdTransport
	target *health.Target
	// drainTimeout bounds the wait for its requests when it is retired.
	drainTimeout time.Duration
	requests     atomic.Uint64
	rate         *rateMeter
	m            *backendMetrics
}

// picker is an immutable balancing snapshot.
type picker struct {
	bal   balance.Balancer
	byEP  map[*balance.Endpoint]*backend
	panic bool
	size  int
}

// upstreamOptions derives a backend's connection settings from its
// service.
func upstreamOptions(s *api.Service) proxy.UpstreamOptions {
	return proxy.UpstreamOptions{
		ConnectTimeout:  s.Timeouts.Connect.D(),
		ResponseTimeout: perTryTimeout(s),
		IdleTimeout:     s.Timeouts.Idle.D(),
		MaxConns:        s.CircuitBreaker.MaxConnections,
		MaxPending:      s.CircuitBreaker.MaxPending,
		MaxRequests:     s.CircuitBreaker.MaxRequests,
	}
}

func perTryTimeout(s *api.Service) time.Duration {
	if d := s.Retry.PerTryTimeout.D(); d > 0 {
		return d
	}
	return s.Timeouts.Request.D()
}

func keyOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// newService builds the runtime for spec, taking over what it can from
// old (nil for a new service). Backends of old that are not kept are
// returned for draining.
func (g *Gateway) newService(ctx context.Context, raw api.Service, old *service) (*service, []*backend) {
	s := &service{g: g, spec: spec.Defaults(raw), backends: map[string]*backend{}}
	sp := &s.spec
	if sp.HashKey != nil {
		s.hashSource, s.hashName = sp.HashKey.Source, sp.HashKey.Name
	}
	s.attempts = min(max(sp.Retry.Attempts, 1), spec.MaxAttempts)
	for _, on := range sp.Retry.On {
		switch on {
		case "5xx":
			s.retry5xx = true
		case "timeout":
			s.retryTime = true
		}
	}
	s.h2c = sp.BackendProtocol == spec.BackendH2C
	s.requestTimeout = sp.Timeouts.Request.D()
	s.perTry = perTryTimeout(sp)
	s.budget.init(sp.Retry.BudgetPercent)
	s.m = g.metrics.service(sp.Name)

	// The health group is kept when the checks are unchanged.
	s.groupKey = keyOf([]any{sp.HealthCheck, sp.OutlierDetection, sp.PanicThreshold, sp.RequireHealthyFirst})
	reuseGroup := old != nil && old.groupKey == s.groupKey
	if reuseGroup {
		s.group, s.current = old.group, old.current
	} else {
		panicPct := sp.PanicThreshold
		if panicPct < 0 {
			panicPct = 0
		}
		cur := &atomic.Pointer[service]{}
		s.current = cur
		s.group = health.NewGroup(sp.Name, spec.OutlierSpec(sp.OutlierDetection), panicPct, g.clock, func() {
			if c := cur.Load(); c != nil {
				c.rebuild()
			}
		})
		s.group.SetLogger(g.logger)
		s.group.SetEventFunc(g.healthEvent)
	}
	check := spec.CheckSpec(sp.HealthCheck)
	s.upKey = keyOf([]any{upstreamOptions(sp), sp.BackendProtocol})
	var retired []*backend
	kept := map[string]bool{}
	for _, b := range sp.Backends {
		nb := &backend{spec: b, drainTimeout: sp.DrainTimeout.D(), rate: &rateMeter{}, m: g.metrics.backend(sp.Name, b.Address)}
		if old != nil {
			if ob := old.backends[b.Address]; ob != nil {
				nb.ep, nb.rate = ob.ep, ob.rate
				nb.requests.Store(ob.requests.Load())
				if old.upKey == s.upKey {
					nb.up, nb.std = ob.up, ob.std
					kept[b.Address] = true
				}
				if reuseGroup {
					nb.target = ob.target
				}
			}
		}
		if nb.ep == nil || nb.ep.Weight != b.Weight || nb.ep.Zone != b.Zone {
			nb.ep = balance.NewEndpoint(b.Address, b.Weight, b.Zone)
		}
		if nb.up == nil {
			nb.up = proxy.NewUpstream(b.Address, upstreamOptions(sp))
			nb.std = newStdTransport(sp)
		}
		if nb.target == nil {
			nb.target = s.group.Add(b.Address, check, sp.RequireHealthyFirst)
		}
		s.backends[b.Address] = nb
		s.order = append(s.order, nb)
	}
	if old != nil {
		for addr, ob := range old.backends {
			if s.backends[addr] == nil {
				if reuseGroup {
					s.group.Remove(addr)
				}
				retired = append(retired, ob)
			} else if !kept[addr] {
				retired = append(retired, &backend{spec: ob.spec, up: ob.up, std: ob.std, drainTimeout: ob.drainTimeout})
			}
		}
	}
	// Only now, with its backends complete, does s receive the group's
	// changes (until then they went to old, still serving); the rebuild
	// after the hand-over sees every change made before it.
	s.current.Store(s)
	if !reuseGroup {
		s.group.Start(ctx)
	}
	s.rebuild()
	return s, retired
}

// rebuild makes a new picker from the backends' current health. The
// health group calls it on every transition.
func (s *service) rebuild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backends == nil {
		return
	}
	targets, panicking := s.group.Routable()
	routable := make(map[*health.Target]bool, len(targets))
	for _, t := range targets {
		routable[t] = true
	}
	var eps []*balance.Endpoint
	byEP := map[*balance.Endpoint]*backend{}
	for _, b := range s.order {
		if b.spec.Drain || !routable[b.target] {
			continue
		}
		if s.spec.SlowStart > 0 {
			b.ep.SetHealthySince(b.target.Status().Since)
		}
		eps = append(eps, b.ep)
		byEP[b.ep] = b
	}
	opts := balance.Options{SlowStart: s.spec.SlowStart.D()}
	if s.spec.ZoneAware && s.g.cfg.Zone != "" {
		opts.ZoneAware, opts.LocalZone = true, s.g.cfg.Zone
	}
	bal, err := balance.New(balance.Algorithm(s.spec.Algorithm), eps, opts)
	if err != nil {
		// The spec was validated; only a bug gets here. Keep the old
		// picker rather than drop traffic.
		s.g.logger.Error("gateway: cannot build balancer", "service", s.spec.Name, "err", err)
		return
	}
	prev := s.pick.Swap(&picker{bal: bal, byEP: byEP, panic: panicking, size: len(eps)})
	if prev == nil || prev.panic != panicking {
		s.m.setPanic(panicking)
		if panicking {
			s.g.logger.Warn("gateway: panic mode: too few healthy backends, routing to all of them", "service", s.spec.Name)
		} else if prev != nil {
			s.g.logger.Info("gateway: panic mode over", "service", s.spec.Name)
		}
	}
}

// stop ends the service's health checks (when its group is not taken
// over by a successor).
func (s *service) stop(keepGroup bool) {
	s.mu.Lock()
	s.backends = nil
	s.mu.Unlock()
	if !keepGroup {
		s.group.Stop()
	}
}

// status reports the service as this gateway runs it.
func (s *service) status(now time.Time) api.GatewayService {
	s.mu.Lock()
	order := s.order
	s.mu.Unlock()
	p := s.pick.Load()
	out := api.GatewayService{Name: s.spec.Name, Backends: []api.BackendStatus{}}
	if p != nil {
		out.Panic = p.panic
	}
	for _, b := range order {
		st := b.target.Status()
		bs := api.BackendStatus{
			Address: b.spec.Address, Weight: max(b.spec.Weight, 1), Zone: b.spec.Zone,
			Healthy: st.Healthy, Ejected: st.Ejected && st.EjectedUntil.After(now), Ejections: st.Ejections,
			LastError: st.LastError, Since: st.Since,
			InFlight: b.ep.InFlight(), Requests: b.requests.Load(), RatePerSecond: b.rate.perSecond(now, b.requests.Load()),
		}
		if bs.Ejected {
			bs.EjectedUntil = st.EjectedUntil
		}
		switch {
		case b.spec.Drain:
			bs.Health = "draining"
		case bs.Ejected:
			bs.Health = "ejected"
		case !st.Healthy:
			bs.Health = "unhealthy"
		default:
			bs.Health = "healthy"
		}
		out.Backends = append(out.Backends, bs)
	}
	return out
}

// retryBudget allows retries up to a percentage of requests: every
// request earns percent/100 of a retry and every retry spends one. Unspent
// retries are saved up to a ceiling of one second's earnings at the last
// second's request rate (at least savedRetries), so that the burst of
// retries when a busy backend dies fits, while retries stay at most the
// percentage of the load over time.
type retryBudget struct {
	milli   atomic.Int64 // thousandths of a retry
	earn    int64
	ceiling atomic.Int64
	// second is the current one-second window (Unix seconds) and count
	// the requests seen in it.
	second atomic.Int64
	count  atomic.Int64
}

const savedRetries = 10

func (b *retryBudget) init(percent int) {
	b.earn = int64(percent) * 10
	b.ceiling.Store(savedRetries * 1000)
	b.milli.Store(3 * 1000) // a few retries are allowed from the start
}

// request counts a request arriving at now (Unix seconds).
func (b *retryBudget) request(now int64) {
	if b.earn == 0 {
		return
	}
	if sec := b.second.Load(); now != sec && b.second.CompareAndSwap(sec, now) {
		n := b.count.Swap(0)
		if now != sec+1 {
			n = 0 // a quiet second or more passed
		}
		b.ceiling.Store(max(savedRetries*1000, n*b.earn))
	}
	b.count.Add(1)
	if b.milli.Load() < b.ceiling.Load() {
		b.milli.Add(b.earn)
	}
}

func (b *retryBudget) spend() bool {
	for {
		v := b.milli.Load()
		if v < 1000 {
			return false
		}
		if b.milli.CompareAndSwap(v, v-1000) {
			return true
		}
	}
}

// rateMeter turns a request counter into a rate, measured between the
// moments someone asks (herd service show), smoothed over rateWindow.
type rateMeter struct {
	mu        sync.Mutex
	rate      float64
	lastCount uint64
	last      time.Time
}

const rateWindow = 5 * time.Second

// perSecond returns the request rate given the counter's value now.
func (r *rateMeter) perSecond(now time.Time, count uint64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		r.last, r.lastCount = now, count
		return 0
	}
	dt := now.Sub(r.last).Seconds()
	if dt < 0.1 {
		return r.rate
	}
	inst := float64(count-r.lastCount) / dt
	w := math.Exp(-dt / rateWindow.Seconds())
	r.rate = w*r.rate + (1-w)*inst
	r.last, r.lastCount = now, count
	return r.rate
}
