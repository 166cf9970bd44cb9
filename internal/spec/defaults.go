package spec

import (
	"maps"
	"slices"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/balance"
	"github.com/herd-cluster/herd/internal/health"
)

// The defaults of a service, as documented on the fields of api.Service.
// Health check and outlier detection defaults are package health's.
const (
	defaultAlgorithm      = balance.RoundRobin
	defaultWeight         = 1
	defaultPathPrefix     = "/"
	defaultAttempts       = 3
	defaultBudgetPercent  = 20
	defaultConnectTimeout = 2 * time.Second
	defaultRequestTimeout = 30 * time.Second
	defaultIdleTimeout    = 60 * time.Second
	defaultMaxConnections = 1024
	defaultMaxPending     = 128
	defaultMaxRequests    = 1024
	defaultPanicThreshold = 50
	defaultDrainTimeout   = 30 * time.Second
)

// defaultRetryOn is what an http service retries by default.
var defaultRetryOn = []string{Retry5xx, RetryTimeout}

// Defaults returns a copy of s with every default filled in, as the gateway
// runs it: kind service, protocol http, algorithm round_robin, route
// path_prefix "/" (http), backend weight 1, the health check's defaults
// (when it has one; a service without a health check gets none), outlier
// detection with its defaults (it is on unless disabled), panic_threshold
// 50, retry attempts 3, budget_percent 20, on [5xx, timeout] (http only)
// and per_try_timeout equal to the request timeout, timeouts connect 2s,
// request 30s, idle 60s, circuit breaker 1024 connections, 128 pending,
// 1024 requests, and drain_timeout 30s. Explicit values, including
// panic_threshold -1, are kept. The copy shares no slices, maps or
// pointers with s.
//
// Defaults does not validate s: call ValidateService first. The defaults
// of a valid service are valid.
func Defaults(s api.Service) api.Service {
	if s.Kind == "" {
		s.Kind = KindService
	}
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTP
	}
	tcp := s.Protocol == ProtocolTCP
	if s.Algorithm == "" {
		s.Algorithm = string(defaultAlgorithm)
	}

	s.Routes = slices.Clone(s.Routes)
	if !tcp {
		for i := range s.Routes {
			if s.Routes[i].PathPrefix == "" {
				s.Routes[i].PathPrefix = defaultPathPrefix
			}
		}
	}
	s.Backends = slices.Clone(s.Backends)
	for i := range s.Backends {
		b := &s.Backends[i]
		if b.Weight == 0 {
			b.Weight = defaultWeight
		}
		b.Labels = maps.Clone(b.Labels)
	}
	if s.HashKey != nil {
		k := *s.HashKey
		s.HashKey = &k
	}

	if s.HealthCheck != nil {
		c := CheckSpec(s.HealthCheck)
		h := *s.HealthCheck
		h.Type, h.Path = c.Type, c.Path
		h.ExpectStatus = slices.Clone(h.ExpectStatus)
		if len(h.ExpectStatus) == 0 && c.ExpectStatus != [2]int{} {
			h.ExpectStatus = []int{c.ExpectStatus[0], c.ExpectStatus[1]}
		}
		h.Interval, h.Timeout = api.Duration(c.Interval), api.Duration(c.Timeout)
		h.Rise, h.Fall = c.Rise, c.Fall
		s.HealthCheck = &h
	}
	o := OutlierSpec(s.OutlierDetection)
	s.OutlierDetection = &api.OutlierDetection{
		Consecutive5xx:            o.Consecutive5xx,
		ConsecutiveConnectFailure: o.ConsecutiveConnectFailure,
		BaseEjectionTime:          api.Duration(o.BaseEjectionTime),
		MaxEjectionTime:           api.Duration(o.MaxEjectionTime),
		MaxEjectionPercent:        o.MaxEjectionPercent,
		Disabled:                  o.Disabled,
	}
	if s.PanicThreshold == 0 {
		s.PanicThreshold = defaultPanicThreshold
	}

	t := deref(s.Timeouts)
	setDuration(&t.Connect, defaultConnectTimeout)
	setDuration(&t.Request, defaultRequestTimeout)
	setDuration(&t.Idle, defaultIdleTimeout)
	s.Timeouts = &t

	r := deref(s.Retry)
	if r.Attempts == 0 {
		r.Attempts = defaultAttempts
	}
	setDuration(&r.PerTryTimeout, t.Request.D())
	if r.BudgetPercent == 0 {
		r.BudgetPercent = defaultBudgetPercent
	}
	r.On = slices.Clone(r.On)
	if len(r.On) == 0 && !tcp {
		r.On = slices.Clone(defaultRetryOn)
	}
	s.Retry = &r

	cb := deref(s.CircuitBreaker)
	setInt(&cb.MaxConnections, defaultMaxConnections)
	setInt(&cb.MaxPending, defaultMaxPending)
	setInt(&cb.MaxRequests, defaultMaxRequests)
	s.CircuitBreaker = &cb

	setDuration(&s.DrainTimeout, defaultDrainTimeout)
	s.Run = RunDefaults(s.Run)
	return s
}

// deref returns *p, or the zero value for nil: the section to fill with
// defaults.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func setDuration(d *api.Duration, def time.Duration) {
	if *d == 0 {
		*d = api.Duration(def)
	}
}

func setInt(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}

// CheckSpec converts an active health check to package health's form with
// its defaults applied (type http, path "/", expect_status [200, 399],
// interval 5s, timeout 2s, rise 2, fall 3; the http-only ones for http
// checks only). It returns nil for nil, a service without active checks.
// An expect_status that is not a pair is ignored (ValidateService reports
// it) and the default range used.
func CheckSpec(h *api.HealthCheck) *health.CheckSpec {
	if h == nil {
		return nil
	}
	c := health.CheckSpec{
		Type:      h.Type,
		Path:      h.Path,
		Host:      h.Host,
		BodyMatch: h.BodyMatch,
		Interval:  h.Interval.D(),
		Timeout:   h.Timeout.D(),
		Jitter:    h.Jitter.D(),
		Rise:      h.Rise,
		Fall:      h.Fall,
	}
	if len(h.ExpectStatus) == 2 {
		c.ExpectStatus = [2]int{h.ExpectStatus[0], h.ExpectStatus[1]}
	}
	c = c.WithDefaults()
	return &c
}

// OutlierSpec converts passive outlier detection settings to package
// health's form with its defaults applied. nil means the defaults:
// outlier detection is on unless a service disables it.
func OutlierSpec(o *api.OutlierDetection) health.OutlierSpec {
	if o == nil {
		return health.OutlierSpec{}.WithDefaults()
	}
	return health.OutlierSpec{
		Consecutive5xx:            o.Consecutive5xx,
		ConsecutiveConnectFailure: o.ConsecutiveConnectFailure,
		BaseEjectionTime:          o.BaseEjectionTime.D(),
		MaxEjectionTime:           o.MaxEjectionTime.D(),
		MaxEjectionPercent:        o.MaxEjectionPercent,
		Disabled:                  o.Disabled,
	}.WithDefaults()
}
