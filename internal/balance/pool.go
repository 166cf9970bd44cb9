package balance

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// weightScale multiplies weights so that slow start can take fractions of
// them in integer arithmetic.
const weightScale = 1000

// maxDraws is how many random draws a pick makes before it falls back to a
// scan when skip keeps rejecting the endpoints drawn.
const maxDraws = 3

// pool is the set of endpoints a weighted balancer picks from, with the
// weights they had when it was built. Only the slow-start flag changes after
// newPool returns.
type pool struct {
	eps     []*Endpoint
	weights []int64 // Weight * weightScale
	cum     []int64 // running sums of weights, for drawing by binary search
	ramp    *ramp   // nil unless an endpoint was in slow start at build time
}

// ramp is the slow-start state of a pool.
type ramp struct {
	now    func() time.Time
	window int64       // Options.SlowStart in nanoseconds
	since  []int64     // each endpoint's HealthySince in Unix nanoseconds; 0 = no ramp
	end    int64       // Unix nanoseconds at which every ramp is over
	over   atomic.Bool // set once the clock passed end, so that picks stop reading it
}

// newPool returns the pool over eps, a non-empty slice it keeps.
func newPool(eps []*Endpoint, opts Options) *pool {
	p := &pool{eps: eps, weights: make([]int64, len(eps)), cum: make([]int64, len(eps))}
	var sum int64
	for i, e := range eps {
		p.weights[i] = int64(e.Weight) * weightScale
		sum += p.weights[i]
		p.cum[i] = sum
	}
	if opts.SlowStart > 0 {
		p.ramp = newRamp(eps, opts)
	}
	return p
}

// newRamp returns the slow-start state of eps, or nil if no endpoint ramps.
func newRamp(eps []*Endpoint, opts Options) *ramp {
	r := &ramp{now: opts.now(), window: int64(opts.SlowStart), since: make([]int64, len(eps))}
	for i, e := range eps {
		r.since[i] = e.healthySince.Load()
		if r.since[i] != 0 {
			r.end = max(r.end, r.since[i]+r.window)
		}
	}
	if r.end <= r.now().UnixNano() {
		return nil
	}
	return r
}

// clock returns the current time in Unix nanoseconds and whether some
// endpoint is still ramping up. Once none is, it answers false without
// reading the clock.
func (p *pool) clock() (now int64, ramping bool) {
	r := p.ramp
	if r == nil || r.over.Load() {
		return 0, false
	}
	now = r.now().UnixNano()
	if now >= r.end {
		r.over.Store(true)
		return 0, false
	}
	return now, true
}

// weight returns endpoint i's effective weight at now: its weight, reduced
// to 10% at the start of its slow-start ramp and growing linearly to 100%
// at its end.
func (p *pool) weight(i int, now int64, ramping bool) int64 {
	w := p.weights[i]
	if !ramping || p.ramp.since[i] == 0 {
		return w
	}
	elapsed := max(now-p.ramp.since[i], 0)
	if elapsed >= p.ramp.window {
		return w
	}
	return int64(float64(w) * (0.1 + 0.9*float64(elapsed)/float64(p.ramp.window)))
}

// draw returns the index of an endpoint drawn at random in proportion to
// effective weight: by binary search over the running sums normally, by a
// linear pass while endpoints ramp up.
func (p *pool) draw(now int64, ramping bool) int {
	if !ramping {
		r := rand.Int64N(p.cum[len(p.cum)-1])
		lo, hi := 0, len(p.cum)-1
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if p.cum[mid] > r {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo
	}
	var total int64
	for i := range p.eps {
		total += p.weight(i, now, true)
	}
	r := rand.Int64N(total)
	for i := range p.eps {
		if r -= p.weight(i, now, true); r < 0 {
			return i
		}
	}
	return len(p.eps) - 1 // not reached
}

// drawFree draws up to maxDraws times and returns the first index that skip
// does not reject; ok is false if it rejected them all.
func (p *pool) drawFree(now int64, ramping bool, skip func(*Endpoint) bool) (i int, ok bool) {
	for range maxDraws {
		i = p.draw(now, ramping)
		if skip == nil || !skip(p.eps[i]) {
			return i, true
		}
	}
	return 0, false
}

// scan returns the first endpoint that skip does not reject, starting from a
// random one, or nil if it rejects them all. It is the fallback when drawing
// keeps hitting skipped endpoints.
func (p *pool) scan(skip func(*Endpoint) bool) *Endpoint {
	start := rand.IntN(len(p.eps))
	for k := range p.eps {
		e := p.eps[(start+k)%len(p.eps)]
		if skip == nil || !skip(e) {
			return e
		}
	}
	return nil
}
