// Package balance holds the load-balancing algorithms of the herd gateway:
// round robin, smooth weighted round robin, least connections, least request
// (power of two choices over in-flight requests and latency), weighted random
// and Maglev consistent hashing, each optionally zone aware and with slow
// start for newly healthy endpoints.
//
// The gateway keeps one *Endpoint per backend for the backend's lifetime and
// reports every request on it with Begin and End. Whenever the set of
// eligible endpoints changes it builds a new Balancer with New. Balancers are
// immutable apart from their counters, safe for concurrent use, and Pick does
// not allocate.
package balance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Algorithm names a balancing algorithm as written in service specs.
type Algorithm string

// The balancing algorithms.
const (
	// RoundRobin hands out the endpoints in turn and ignores weights and
	// slow start.
	RoundRobin Algorithm = "round_robin"
	// WeightedRoundRobin is nginx's smooth weighted round robin: weights
	// {5,1,1} give the sequence a a b a c a a.
	WeightedRoundRobin Algorithm = "weighted_round_robin"
	// LeastConn picks the endpoint with the fewest requests in flight per
	// unit of weight, choosing at random in proportion to weight among ties.
	LeastConn Algorithm = "least_conn"
	// LeastRequest is power of two choices: it draws two endpoints in
	// proportion to weight and keeps the one with the lower
	// (inflight+1) * latency EWMA / weight.
	LeastRequest Algorithm = "least_request"
	// Random picks at random in proportion to weight.
	Random Algorithm = "random"
	// ConsistentHash maps the request key onto a weighted Maglev table, so
	// that a key keeps its endpoint while the set of endpoints changes little.
	ConsistentHash Algorithm = "consistent_hash"
)

// algorithms lists every Algorithm in the order Algorithms reports them.
var algorithms = []Algorithm{RoundRobin, WeightedRoundRobin, LeastConn, LeastRequest, Random, ConsistentHash}

// Valid reports whether a names a known algorithm.
func (a Algorithm) Valid() bool { return slices.Contains(algorithms, a) }

// Algorithms returns every known algorithm, for listing the choices in error
// messages and help text.
func Algorithms() []Algorithm { return slices.Clone(algorithms) }

// ErrUnknownAlgorithm is wrapped by the error New returns for an algorithm it
// does not know.
var ErrUnknownAlgorithm = errors.New("unknown balancing algorithm")

// MaxWeight is the largest endpoint weight New accepts.
const MaxWeight = 1_000_000

// Options tune a Balancer. The zero value is plain balancing without zone
// awareness or slow start.
type Options struct {
	// ZoneAware keeps picks on endpoints in LocalZone while that zone holds
	// enough of the eligible weight; see MinLocalPercent. It needs LocalZone.
	ZoneAware bool
	// LocalZone is the zone of the gateway itself.
	LocalZone string
	// MinLocalPercent is the share of the eligible endpoints' weight, in
	// percent, that LocalZone must hold for every pick to stay local. When
	// it holds a smaller share s, the fraction s/MinLocalPercent of the picks
	// stays local and the rest is balanced over all endpoints, local ones
	// included. Zero means 100/Z, with Z the number of distinct zones among
	// the eligible endpoints: the share the local zone holds when capacity is
	// spread evenly over the zones, which is Envoy's rule when callers are
	// spread evenly too. It must be between 0 and 100.
	MinLocalPercent int
	// SlowStart ramps the effective weight of an endpoint that became healthy
	// (Endpoint.HealthySince) less than SlowStart ago linearly from 10% to
	// 100% of its weight. It applies to weighted_round_robin, random,
	// least_request and least_conn; round_robin and consistent_hash ignore it.
	// Zero turns slow start off; it must not be negative.
	SlowStart time.Duration
	// Now returns the current time, for slow start; nil means time.Now.
	Now func() time.Time
	// MaglevTableSize is the size of the consistent_hash lookup table: a prime
	// of at least the number of endpoints and at most 2^24. The more slots
	// per endpoint, the closer each endpoint's share of keys to its weight.
	// Zero means DefaultMaglevTableSize, or the smallest prime of at least
	// 100 per endpoint when that is larger.
	MaglevTableSize int
}

// now returns o.Now, or time.Now when it is nil.
func (o Options) now() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

// validate checks the fields of o that do not depend on the endpoints.
func (o Options) validate() error {
	switch {
	case o.SlowStart < 0:
		return fmt.Errorf("slow start %v is negative", o.SlowStart)
	case o.MinLocalPercent < 0 || o.MinLocalPercent > 100:
		return fmt.Errorf("min local percent %d is not between 0 and 100", o.MinLocalPercent)
	case o.ZoneAware && o.LocalZone == "":
		return errors.New("zone-aware balancing needs a local zone")
	case o.MaglevTableSize < 0 || o.MaglevTableSize > maxMaglevTableSize:
		return fmt.Errorf("maglev table size %d is not between 0 and %d", o.MaglevTableSize, maxMaglevTableSize)
	case o.MaglevTableSize > 0 && !isPrime(o.MaglevTableSize):
		return fmt.Errorf("maglev table size %d is not a prime", o.MaglevTableSize)
	}
	return nil
}

// Balancer picks an endpoint for one request. Implementations are safe for
// concurrent use and their Pick does not allocate.
type Balancer interface {
	// Pick returns an endpoint, skipping any for which skip returns true
	// (skip may be nil; the gateway uses it to try a different backend on
	// retry and to skip endpoints whose circuit breaker is open). key is the
	// consistent-hash key (ignored by other algorithms). It returns nil when
	// no endpoint is eligible. skip must be cheap and must not call back into
	// the Balancer: weighted_round_robin calls it under its lock.
	Pick(key uint64, skip func(*Endpoint) bool) *Endpoint
}

// New builds a balancer over eps, the eligible endpoints. eps may be empty,
// in which case Pick returns nil. New reads each endpoint's Weight, Zone and
// HealthySince now and does not see later changes to them: build a new
// balancer instead. It does not keep eps itself.
func New(alg Algorithm, eps []*Endpoint, opts Options) (Balancer, error) {
	if !alg.Valid() {
		names := make([]string, len(algorithms))
		for i, a := range algorithms {
			names[i] = string(a)
		}
		return nil, fmt.Errorf("algorithm %q, want one of %s: %w", alg, strings.Join(names, ", "), ErrUnknownAlgorithm)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := validateEndpoints(eps); err != nil {
		return nil, err
	}
	eps = slices.Clone(eps)
	if opts.ZoneAware {
		return newZoned(alg, eps, opts)
	}
	return build(alg, eps, opts)
}

// validateEndpoints checks that eps holds distinct endpoints with valid
// weights.
func validateEndpoints(eps []*Endpoint) error {
	seen := make(map[string]bool, len(eps))
	for i, e := range eps {
		switch {
		case e == nil:
			return fmt.Errorf("endpoint %d is nil", i)
		case e.Weight < 1 || e.Weight > MaxWeight:
			return fmt.Errorf("endpoint %s: weight %d is not between 1 and %d", e.Addr, e.Weight, MaxWeight)
		case seen[e.Addr]:
			return fmt.Errorf("endpoint %s is listed twice", e.Addr)
		}
		seen[e.Addr] = true
	}
	return nil
}

// build returns the balancer for alg over eps, which it may keep and reorder.
func build(alg Algorithm, eps []*Endpoint, opts Options) (Balancer, error) {
	if len(eps) == 0 {
		return none{}, nil
	}
	switch alg {
	case RoundRobin:
		return newRoundRobin(eps), nil
	case WeightedRoundRobin:
		return newSmoothWRR(newPool(eps, opts)), nil
	case LeastConn:
		return &leastConn{pool: newPool(eps, opts)}, nil
	case LeastRequest:
		return &leastRequest{pool: newPool(eps, opts)}, nil
	case Random:
		return &random{pool: newPool(eps, opts)}, nil
	case ConsistentHash:
		return newMaglev(eps, opts.MaglevTableSize)
	}
	panic("balance: no builder for algorithm " + string(alg))
}

// none is the balancer over no endpoints.
type none struct{}

func (none) Pick(uint64, func(*Endpoint) bool) *Endpoint { return nil }

// HashKey hashes a string key (a header, cookie, path or source IP) for
// ConsistentHash with 64-bit FNV-1a. It does not allocate.
func HashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer: it spreads every input bit over the
// output, so that keys with weak low bits (small integers, FNV of short
// strings) still land uniformly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
