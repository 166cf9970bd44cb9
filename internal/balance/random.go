package balance

// random picks at random in proportion to effective weight.
type random struct{ pool *pool }

// Pick draws an endpoint, drawing again when skip rejects it and scanning
// from a random endpoint after maxDraws rejections.
func (b *random) Pick(_ uint64, skip func(*Endpoint) bool) *Endpoint {
	now, ramping := b.pool.clock()
	if i, ok := b.pool.drawFree(now, ramping, skip); ok {
		return b.pool.eps[i]
	}
	return b.pool.scan(skip)
}
