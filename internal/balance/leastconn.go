package balance

import (
	"math/bits"
	"math/rand/v2"
)

// leastConn picks the endpoint with the fewest requests in flight per unit
// of effective weight, as nginx's least_conn does. Among tied endpoints (all
// of them when the service is idle) it picks at random in proportion to
// effective weight, so that light traffic still follows the weights.
type leastConn struct{ pool *pool }

// Pick scans every endpoint once, keeping the least loaded one and drawing
// among ties by weighted reservoir sampling.
func (b *leastConn) Pick(_ uint64, skip func(*Endpoint) bool) *Endpoint {
	p := b.pool
	now, ramping := p.clock()
	best := -1
	var bestN, bestW, tieW int64
	r := rng(rand.Uint64())
	for i, e := range p.eps {
		if skip != nil && skip(e) {
			continue
		}
		n := max(e.inflight.Load(), 0)
		w := p.weight(i, now, ramping)
		if best >= 0 {
			// Compare n/w with bestN/bestW; weights are positive.
			lhs, rhs := n*bestW, bestN*w
			if lhs > rhs {
				continue
			}
			if lhs == rhs {
				// Replace the choice with probability w/tieW, which leaves
				// every tied endpoint chosen in proportion to its weight.
				tieW += w
				if r.below(tieW) < w {
					best, bestN, bestW = i, n, w
				}
				continue
			}
		}
		best, bestN, bestW, tieW = i, n, w, w
	}
	if best < 0 {
		return nil
	}
	return p.eps[best]
}

// rng is wyrand, the generator behind the Go runtime's old fastrand. A pick
// that may need a random number per endpoint seeds one from math/rand/v2,
// which costs several times more per number.
type rng uint64

// below returns a random number in [0, n) for n > 0, by Lemire's
// multiply-shift (biased by at most n/2^64).
func (r *rng) below(n int64) int64 {
	*r += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(uint64(*r), uint64(*r)^0xe7037ed1a0b428db)
	hi, _ = bits.Mul64(hi^lo, uint64(n))
	return int64(hi)
}
