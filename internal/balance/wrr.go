package balance

import "sync"

// smoothWRR is nginx's smooth weighted round robin. Each pick adds every
// endpoint's effective weight to its current value, takes the endpoint with
// the largest current value (the first one on ties) and subtracts the total
// weight from it. That spreads each endpoint's picks evenly over the cycle:
// weights {5,1,1} give a a b a c a a. Endpoints that skip rejects sit the
// pick out, as in nginx.
type smoothWRR struct {
	pool *pool

	// mu guards current: a pick reads and updates every entry. It is held
	// for one pass over the endpoints.
	mu      sync.Mutex
	current []int64
}

func newSmoothWRR(p *pool) *smoothWRR {
	return &smoothWRR{pool: p, current: make([]int64, len(p.eps))}
}

// Pick returns the next endpoint in the smooth sequence.
func (b *smoothWRR) Pick(_ uint64, skip func(*Endpoint) bool) *Endpoint {
	now, ramping := b.pool.clock()
	b.mu.Lock()
	defer b.mu.Unlock()
	best := -1
	var total, bestCur int64
	for i, e := range b.pool.eps {
		if skip != nil && skip(e) {
			continue
		}
		w := b.pool.weight(i, now, ramping)
		cur := b.current[i] + w
		b.current[i] = cur
		total += w
		if best < 0 || cur > bestCur {
			best, bestCur = i, cur
		}
	}
	if best < 0 {
		return nil
	}
	b.current[best] -= total
	return b.pool.eps[best]
}
