package balance

import "sync/atomic"

// zoneOne is the fixed-point 1 of zoned.keep: fractions are in 1/65536.
const zoneOne = 1 << 16

// zoneSeed separates the hash that sends a consistent_hash key local or not
// from the one that picks its Maglev slot.
const zoneSeed = 0x7a6f6e6573656564

// zoned keeps picks in the local zone while it holds enough of the weight
// (see Options.MinLocalPercent) and spills the fraction it cannot take to a
// balancer over all endpoints.
type zoned struct {
	local, all Balancer
	keep       uint64 // fraction of picks kept local, in 1/zoneOne
	// byKey decides by the key rather than by turns, so that a
	// consistent_hash key always lands on the same side.
	byKey bool
	picks atomic.Uint64 // picks decided by turns so far
}

// newZoned builds the zone-aware balancer for alg over eps, a slice it keeps.
func newZoned(alg Algorithm, eps []*Endpoint, opts Options) (Balancer, error) {
	var local []*Endpoint
	var localW, totalW int64
	zones := make(map[string]bool)
	for _, e := range eps {
		totalW += int64(e.Weight)
		zones[e.Zone] = true
		if e.Zone == opts.LocalZone {
			local = append(local, e)
			localW += int64(e.Weight)
		}
	}
	all, err := build(alg, eps, opts)
	if err != nil || localW == 0 || localW == totalW {
		return all, err
	}
	z := &zoned{all: all, keep: zoneOne, byKey: alg == ConsistentHash}
	if z.local, err = build(alg, local, opts); err != nil {
		return nil, err
	}
	// The local zone needs the share num/den of the weight to take every
	// pick; with less it keeps its share divided by num/den.
	num, den := int64(opts.MinLocalPercent), int64(100)
	if num == 0 {
		num, den = 1, int64(len(zones))
	}
	if localW*den < num*totalW {
		z.keep = uint64(localW * den * zoneOne / (num * totalW))
	}
	return z, nil
}

// Pick picks from the local zone in the fraction keep of the calls, spread
// evenly, and from all endpoints otherwise or when skip rejects every local
// one.
func (z *zoned) Pick(key uint64, skip func(*Endpoint) bool) *Endpoint {
	if z.stayLocal(key) {
		if e := z.local.Pick(key, skip); e != nil {
			return e
		}
	}
	return z.all.Pick(key, skip)
}

// stayLocal reports whether this pick stays in the local zone.
func (z *zoned) stayLocal(key uint64) bool {
	if z.keep >= zoneOne {
		return true
	}
	if z.byKey {
		return mix64(key^zoneSeed)%zoneOne < z.keep
	}
	// The c-th pick is local when floor(c*keep/zoneOne) goes up, which
	// keeps exactly that many of the first c picks local.
	c := z.picks.Add(1)
	return (c*z.keep)>>16 != ((c-1)*z.keep)>>16
}
