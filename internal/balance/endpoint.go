package balance

import (
	"math"
	"sync/atomic"
	"time"
)

// ewmaAlpha is the weight of a new latency sample in the EWMA: with 0.3 a
// sample's influence halves about every two requests, so the average follows
// a backend that slows down within a handful of requests.
const ewmaAlpha = 0.3

// Endpoint is one backend of a service. The gateway keeps the same Endpoint
// while the backend exists, so that its in-flight count and latency survive
// the rebuilding of balancers. Its methods are safe for concurrent use; an
// Endpoint must not be copied.
type Endpoint struct {
	// Addr is the backend's host:port, its identity.
	Addr string
	// Weight is the backend's relative capacity, between 1 and MaxWeight.
	Weight int
	// Zone is the backend's availability zone, for zone-aware balancing.
	Zone string

	inflight     atomic.Int64 // requests begun and not yet ended
	ewma         atomic.Int64 // latency EWMA in nanoseconds; 0 = no sample yet
	healthySince atomic.Int64 // Unix nanoseconds; 0 = not ramping
}

// NewEndpoint returns an endpoint with no request in flight and no latency
// sample.
func NewEndpoint(addr string, weight int, zone string) *Endpoint {
	return &Endpoint{Addr: addr, Weight: weight, Zone: zone}
}

// Begin records that a request or connection to e started. Every Begin must
// be followed by one End.
func (e *Endpoint) Begin() { e.inflight.Add(1) }

// End records that a request or connection begun with Begin finished after
// latency, which updates the latency EWMA with weight 0.3 for the new sample
// (the first sample is taken as is). latency <= 0 means there is no sample,
// for example when the request failed before the backend answered.
func (e *Endpoint) End(latency time.Duration) {
	e.inflight.Add(-1)
	if latency <= 0 {
		return
	}
	for {
		old := e.ewma.Load()
		avg := int64(latency)
		if old != 0 {
			avg = int64(math.Round(float64(old) + ewmaAlpha*(float64(latency)-float64(old))))
		}
		avg = max(avg, 1) // 0 means no sample
		if e.ewma.CompareAndSwap(old, avg) {
			return
		}
	}
}

// InFlight returns the number of requests begun and not yet ended.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// LatencyEWMA returns the moving average of the latencies reported to End,
// or 0 if none was.
func (e *Endpoint) LatencyEWMA() time.Duration { return time.Duration(e.ewma.Load()) }

// SetHealthySince records when e became healthy, which starts its slow-start
// ramp; the zero time means no ramp. Call it before building the balancer
// that includes e: balancers read it when they are built.
func (e *Endpoint) SetHealthySince(t time.Time) {
	if t.IsZero() {
		e.healthySince.Store(0)
		return
	}
	e.healthySince.Store(t.UnixNano())
}

// HealthySince returns the time set with SetHealthySince, or the zero time.
func (e *Endpoint) HealthySince() time.Time {
	ns := e.healthySince.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
