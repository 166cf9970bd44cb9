package balance

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// DefaultMaglevTableSize is the consistent_hash lookup table size for up to
// 655 endpoints; larger sets get the smallest prime of at least 100 per
// endpoint, which keeps each endpoint's share within about 1% of its weight.
const DefaultMaglevTableSize = 65537

// maxMaglevTableSize bounds Options.MaglevTableSize: 2^24 slots take 64 MiB.
const maxMaglevTableSize = 1 << 24

// maglevProbes is how many table slots a pick walks past a skipped endpoint
// before it falls back to scanning the endpoints.
const maglevProbes = 64

// Seeds of the two hashes of an endpoint address that give its Maglev
// permutation (offset and step).
const (
	maglevOffsetSeed = 0x6d61676c65766f66
	maglevStepSeed   = 0x6d61676c65767374
)

// maglev is consistent hashing with a Maglev lookup table (Eisenbud et al.,
// NSDI 2016): each endpoint fills table slots in its own pseudo-random order,
// taking turns in proportion to weight (as Envoy does), and a key picks the
// slot it hashes to. When one of N endpoints leaves, its slots go to the
// others and only a little more than 1/N of the keys move.
type maglev struct {
	eps   []*Endpoint // sorted by Addr, so the table depends only on the set
	table []uint32    // slot -> index into eps
}

// newMaglev builds the table over eps, a non-empty slice it keeps and sorts.
// size is Options.MaglevTableSize, already validated.
func newMaglev(eps []*Endpoint, size int) (*maglev, error) {
	if size == 0 {
		size = DefaultMaglevTableSize
		if len(eps) > size/100 {
			size = nextPrime(100 * len(eps))
		}
	}
	if size < len(eps) || size > maxMaglevTableSize {
		return nil, fmt.Errorf("maglev table size %d does not fit %d endpoints", size, len(eps))
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return strings.Compare(a.Addr, b.Addr) })
	return &maglev{eps: eps, table: maglevTable(eps, uint64(size))}, nil
}

// maglevTable fills a table of m slots, m prime, with indexes into eps.
func maglevTable(eps []*Endpoint, m uint64) []uint32 {
	pos := make([]uint64, len(eps))   // next slot each endpoint wants
	step := make([]uint64, len(eps))  // stride of its permutation, in [1, m-1]
	credit := make([]int64, len(eps)) // round from which it may take its next slot, times maxW
	var maxW int64
	for i, e := range eps {
		h := HashKey(e.Addr)
		pos[i] = mix64(h^maglevOffsetSeed) % m
		step[i] = mix64(h^maglevStepSeed)%(m-1) + 1
		maxW = max(maxW, int64(e.Weight))
	}
	const free = math.MaxUint32
	table := make([]uint32, m)
	for s := range table {
		table[s] = free
	}
	var filled uint64
	for round := int64(0); ; round++ {
		for i, e := range eps {
			// An endpoint of the largest weight takes a slot every round,
			// one of a third of that weight every third round.
			if round*int64(e.Weight) < credit[i] {
				continue
			}
			credit[i] += maxW
			// m is prime, so the permutation reaches every slot, and one
			// is free while filled < m.
			s := pos[i]
			for table[s] != free {
				s = advance(s, step[i], m)
			}
			table[s] = uint32(i)
			pos[i] = advance(s, step[i], m)
			if filled++; filled == m {
				return table
			}
		}
	}
}

// Pick returns the endpoint of the slot key hashes to. If skip rejects it,
// Pick walks the following slots to the first endpoint skip accepts, and
// after maglevProbes slots scans the endpoints that follow the first one;
// either way a key and a skip set always give the same fallback.
func (b *maglev) Pick(key uint64, skip func(*Endpoint) bool) *Endpoint {
	m := uint64(len(b.table))
	s, _ := bits.Mul64(mix64(key), m) // uniform in [0, m) without a division
	first := b.table[s]
	if skip == nil || !skip(b.eps[first]) {
		return b.eps[first]
	}
	last := first
	for range maglevProbes {
		if s++; s == m {
			s = 0
		}
		i := b.table[s]
		if i == last {
			continue
		}
		last = i
		if !skip(b.eps[i]) {
			return b.eps[i]
		}
	}
	n := uint32(len(b.eps))
	for k := uint32(1); k < n; k++ {
		if e := b.eps[(first+k)%n]; !skip(e) {
			return e
		}
	}
	return nil
}

// advance returns (pos + step) mod m for pos, step < m. It neither divides
// nor branches (the branch would go either way at random), since probing for
// free slots dominates building the table.
func advance(pos, step, m uint64) uint64 {
	d, borrow := bits.Sub64(pos+step, m, 0)
	return d + m&-borrow // pos+step-m, or pos+step when that borrowed
}

// isPrime reports whether n is prime, by trial division.
func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// nextPrime returns the smallest prime >= n.
func nextPrime(n int) int {
	for !isPrime(n) {
		n++
	}
	return n
}
