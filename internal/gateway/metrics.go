package gateway

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/internal/health"
)

// metrics holds the gateway's Prometheus metrics. Per-request paths use
// counters resolved once per service and backend, never a label lookup.
type metrics struct {
	requests        *prometheus.CounterVec
	responses       *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	failed          *prometheus.CounterVec
	noBackend       *prometheus.CounterVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	panicMode       *prometheus.GaugeVec
	transitions     *prometheus.CounterVec
	ejections       *prometheus.CounterVec
	connectErrors   *prometheus.CounterVec
	timeouts        *prometheus.CounterVec
	breaker         *prometheus.CounterVec

	mu       sync.Mutex
	services map[string]*serviceMetrics
	backends map[[2]string]*backendMetrics
}

type serviceMetrics struct {
	requests, failed, noBackend, retries, budgetExhausted prometheus.Counter
	panicGauge                                            prometheus.Gauge
}

func (m *serviceMetrics) setPanic(on bool) {
	if on {
		m.panicGauge.Set(1)
	} else {
		m.panicGauge.Set(0)
	}
}

type backendMetrics struct {
	classes                          [6]prometheus.Counter // index = status/100
	latency                          prometheus.Observer
	connectErrors, timeouts, breaker prometheus.Counter
}

func (m *backendMetrics) status(code int) prometheus.Counter {
	c := code / 100
	if c < 1 || c > 5 {
		c = 0
	}
	return m.classes[c]
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(reg prometheus.Registerer) *metrics {
	sb := []string{"service", "backend"}
	m := &metrics{
		requests:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_requests_total", Help: "Requests routed to a service."}, []string{"service"}),
		responses:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_backend_responses_total", Help: "Responses from a backend by status class (1xx..5xx; other = none)."}, []string{"service", "backend", "class"}),
		latency:         prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herd_gateway_backend_response_seconds", Help: "Time from sending a request to a backend to its response header.", Buckets: latencyBuckets}, sb),
		failed:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_failed_requests_total", Help: "Requests that got no backend response (the gateway answered 502/503/504)."}, []string{"service"}),
		noBackend:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_no_backend_total", Help: "Requests answered 503 because the service had no backend to try."}, []string{"service"}),
		retries:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_retries_total", Help: "Retried attempts."}, []string{"service"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_retry_budget_exhausted_total", Help: "Retries not made because the retry budget was spent."}, []string{"service"}),
		panicMode:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herd_gateway_panic_mode", Help: "1 while too few backends are healthy and the service routes to all of them."}, []string{"service"}),
		transitions:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_health_transitions_total", Help: "Backend health changes, by the state entered."}, []string{"service", "backend", "to"}),
		ejections:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_ejections_total", Help: "Passive (outlier) ejections of a backend."}, sb),
		connectErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_backend_connect_errors_total", Help: "Failed connections to a backend."}, sb),
		timeouts:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_backend_timeouts_total", Help: "Attempts that timed out waiting for a backend's response."}, sb),
		breaker:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herd_gateway_circuit_breaker_rejections_total", Help: "Attempts refused by a backend's circuit breaker."}, sb),
		services:        map[string]*serviceMetrics{},
		backends:        map[[2]string]*backendMetrics{},
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.responses, m.latency, m.failed, m.noBackend, m.retries, m.budgetExhausted,
			m.panicMode, m.transitions, m.ejections, m.connectErrors, m.timeouts, m.breaker)
	}
	return m
}

func (m *metrics) service(name string) *serviceMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.services[name]; s != nil {
		return s
	}
	s := &serviceMetrics{
		requests: m.requests.WithLabelValues(name), failed: m.failed.WithLabelValues(name),
		noBackend: m.noBackend.WithLabelValues(name), retries: m.retries.WithLabelValues(name),
		budgetExhausted: m.budgetExhausted.WithLabelValues(name), panicGauge: m.panicMode.WithLabelValues(name),
	}
	m.services[name] = s
	return s
}

func (m *metrics) backend(service, addr string) *backendMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{service, addr}
	if b := m.backends[k]; b != nil {
		return b
	}
	b := &backendMetrics{
		latency:       m.latency.WithLabelValues(service, addr),
		connectErrors: m.connectErrors.WithLabelValues(service, addr),
		timeouts:      m.timeouts.WithLabelValues(service, addr),
		breaker:       m.breaker.WithLabelValues(service, addr),
	}
	b.classes[0] = m.responses.WithLabelValues(service, addr, "other")
	for c := 1; c <= 5; c++ {
		b.classes[c] = m.responses.WithLabelValues(service, addr, strconv.Itoa(c)+"xx")
	}
	m.backends[k] = b
	return b
}

// forgetService drops the series of a removed service.
func (m *metrics) forgetService(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.services, name)
	for _, v := range []*prometheus.CounterVec{m.requests, m.failed, m.noBackend, m.retries, m.budgetExhausted} {
		v.DeleteLabelValues(name)
	}
	m.panicMode.DeleteLabelValues(name)
}

// forgetBackend drops the series of a removed backend of a service.
func (m *metrics) forgetBackend(service, addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.backends, [2]string{service, addr})
	l := prometheus.Labels{"service": service, "backend": addr}
	m.responses.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.transitions.DeletePartialMatch(l)
	m.ejections.DeletePartialMatch(l)
	m.connectErrors.DeletePartialMatch(l)
	m.timeouts.DeletePartialMatch(l)
	m.breaker.DeletePartialMatch(l)
}

// healthEvent counts a health group's event.
// healthEvent counts a health transition and passes it on.
func (g *Gateway) healthEvent(e health.Event) {
	g.metrics.healthEvent(e)
	if g.cfg.HealthEvent != nil {
		g.cfg.HealthEvent(e)
	}
}

func (m *metrics) healthEvent(e health.Event) {
	switch e.Kind {
	case health.EventHealthy, health.EventUnhealthy:
		m.transitions.WithLabelValues(e.Service, e.Addr, string(e.Kind)).Inc()
	case health.EventEjected:
		m.ejections.WithLabelValues(e.Service, e.Addr).Inc()
		m.transitions.WithLabelValues(e.Service, e.Addr, "ejected").Inc()
	case health.EventUneject:
		m.transitions.WithLabelValues(e.Service, e.Addr, "returned").Inc()
	}
}
