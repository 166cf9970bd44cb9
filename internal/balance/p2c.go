package balance

// leastRequest is power of two choices. It draws two endpoints at random in
// proportion to effective weight (with replacement) and keeps the better one:
//
//   - If neither has a request in flight, the one with the lower latency
//     EWMA; the weight does not matter, since an idle backend serves a lone
//     request in its usual time whatever its capacity.
//   - Otherwise the one with the lower (inflight+1) * EWMA / weight: the
//     expected wait for one more request per unit of capacity. Under load
//     this keeps in-flight counts in proportion to weight.
//
// On a tie it keeps the first draw, so that an idle service whose endpoints
// are equally fast gets exactly weighted-random shares. An endpoint without a
// latency sample counts as fast as the other one (as 1ns if neither has one),
// so a new endpoint is judged by its load until its first response instead of
// drawing every request.
type leastRequest struct{ pool *pool }

// Pick draws two endpoints that skip does not reject and returns the better
// one; see drawFree and scan for the fallbacks when skip rejects draws.
func (b *leastRequest) Pick(_ uint64, skip func(*Endpoint) bool) *Endpoint {
	p := b.pool
	now, ramping := p.clock()
	i, ok := p.drawFree(now, ramping, skip)
	if !ok {
		return p.scan(skip)
	}
	j, ok := p.drawFree(now, ramping, skip)
	if ok && j != i && b.better(j, i, now, ramping) {
		return p.eps[j]
	}
	return p.eps[i]
}

// better reports whether endpoint j is a strictly better choice than i.
func (b *leastRequest) better(j, i int, now int64, ramping bool) bool {
	p := b.pool
	ei, ej := p.eps[i], p.eps[j]
	la, lb := ei.ewma.Load(), ej.ewma.Load()
	switch {
	case la == 0 && lb == 0:
		la, lb = 1, 1
	case la == 0:
		la = lb
	case lb == 0:
		lb = la
	}
	na, nb := max(ei.inflight.Load(), 0), max(ej.inflight.Load(), 0)
	if na == 0 && nb == 0 {
		return lb < la
	}
	sa := float64(na+1) * float64(la) / float64(p.weight(i, now, ramping))
	sb := float64(nb+1) * float64(lb) / float64(p.weight(j, now, ramping))
	return sb < sa
}
