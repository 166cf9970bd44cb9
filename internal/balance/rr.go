package balance

import (
	"math/rand/v2"
	"sync/atomic"
)

// roundRobin hands out the endpoints in turn, ignoring weights.
type roundRobin struct {
	eps  []*Endpoint
	next atomic.Uint64 // picks so far, from a random start
}

// newRoundRobin starts at a random endpoint, so that frequent rebuilds do
// not favour the first endpoints.
func newRoundRobin(eps []*Endpoint) *roundRobin {
	b := &roundRobin{eps: eps}
	b.next.Store(rand.Uint64())
	return b
}

// Pick returns the next endpoint in turn, or the first one after it that
// skip does not reject.
func (b *roundRobin) Pick(_ uint64, skip func(*Endpoint) bool) *Endpoint {
	i := int(b.next.Add(1) % uint64(len(b.eps)))
	for range b.eps {
		e := b.eps[i]
		if skip == nil || !skip(e) {
			return e
		}
		if i++; i == len(b.eps) {
			i = 0
		}
	}
	return nil
}
