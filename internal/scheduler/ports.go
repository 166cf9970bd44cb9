package scheduler

import "math/bits"

// Bounds of a node's port range; a range reaching past them is clipped.
const (
	minPort = 1
	maxPort = 65535
)

// portSet is the set of used host ports in a node's range [min, min+size).
// It is a bitset that grows on demand, so a wide range with few used ports
// costs one word, and allocation of the lowest free port skips 64 used
// ports at a time.
type portSet struct {
	min  int
	size int
	// words has bit i set when port min+i is used; ports past its end are
	// free.
	words []uint64
	// used counts the set bits.
	used int
	// hint is an index below which no port is free.
	hint int
	// extra counts further claims on a port already used, which only odd
	// input produces (two replicas recorded with one port); nil until then.
	extra map[int]int
}

// init sets the range from a node's PortMin and PortMax; an empty or
// inverted range has no ports. words is the initial backing store.
func (p *portSet) init(lo, hi int, words []uint64) {
	lo = max(lo, minPort)
	hi = min(hi, maxPort)
	p.min = lo
	p.size = max(hi-lo+1, 0)
	p.words = words
}

// free returns the number of unused ports in the range.
func (p *portSet) free() int { return p.size - p.used }

// contains reports whether port is in the range.
func (p *portSet) contains(port int) bool { return port >= p.min && port-p.min < p.size }

// isUsed reports whether port is in the range and used.
func (p *portSet) isUsed(port int) bool {
	if !p.contains(port) {
		return false
	}
	i := port - p.min
	return i>>6 < len(p.words) && p.words[i>>6]&(1<<(i&63)) != 0
}

// claim marks port as used; a port outside the range is ignored, because
// it never competes with allocation.
func (p *portSet) claim(port int) {
	if !p.contains(port) {
		return
	}
	i := port - p.min
	for i>>6 >= len(p.words) {
		p.words = append(p.words, 0)
	}
	if p.words[i>>6]&(1<<(i&63)) != 0 {
		if p.extra == nil {
			p.extra = make(map[int]int)
		}
		p.extra[port]++
		return
	}
	p.words[i>>6] |= 1 << (i & 63)
	p.used++
}

// release undoes one claim of port.
func (p *portSet) release(port int) {
	if !p.isUsed(port) {
		return
	}
	if p.extra[port] > 0 {
		p.extra[port]--
		if p.extra[port] == 0 {
			delete(p.extra, port)
		}
		return
	}
	i := port - p.min
	p.words[i>>6] &^= 1 << (i & 63)
	p.used--
	p.hint = min(p.hint, i)
}

// alloc claims and returns the lowest free port, or false when none is.
func (p *portSet) alloc() (int, bool) {
	if p.free() <= 0 {
		return 0, false
	}
	for w := p.hint >> 6; w<<6 < p.size; w++ {
		if w >= len(p.words) {
			p.words = append(p.words, 0)
		}
		x := ^p.words[w]
		if w == p.hint>>6 {
			x &= ^uint64(0) << (p.hint & 63)
		}
		if x == 0 {
			continue
		}
		i := w<<6 + bits.TrailingZeros64(x)
		if i >= p.size {
			break
		}
		p.words[w] |= 1 << (i & 63)
		p.used++
		p.hint = i + 1
		return p.min + i, true
	}
	return 0, false
}
