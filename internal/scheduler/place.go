package scheduler

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/herd-cluster/herd/api"
)

// Request asks for new replicas of one service.
type Request struct {
	// Service is the service's name; it keys the anti-affinity and zone
	// counts.
	Service string
	// Run is the service's run section; nil places nothing.
	Run *api.Run
	// Count is how many replicas to place; zero or less places none.
	Count int
	// Exclude names nodes not to place on, such as the node of a replica
	// being replaced. Unknown names are ignored.
	Exclude []string
}

// Placement is where one new replica goes.
type Placement struct {
	// Node is the node's name.
	Node string
	// Ports maps each of PortNames(run) to the host port allocated on Node.
	Ports map[string]int
	// Resources is what the replica reserves (ReplicaResources(run)).
	Resources api.Resources
	// Replaces is the ID of the lost replica this one replaces (set by
	// Replace only).
	Replaces string
}

// Plan is the outcome of one Place or Replace.
type Plan struct {
	// Service and Requested repeat the request.
	Service   string
	Requested int
	// Placements are the replicas placed, in the order they were chosen.
	Placements []Placement
	// Unplaced is how many replicas found no node; Reason says why, over
	// all nodes, such as "no node satisfies: memory 4096 MiB > free 1024
	// MiB on 3 nodes; driver docker unavailable on 1 node". The replicas
	// of a request are identical, so they all fail for the same reason.
	Unplaced int
	Reason   string
}

// Err returns an *UnplacedError when some replicas were not placed, else
// nil.
func (p *Plan) Err() error {
	if p.Unplaced == 0 {
		return nil
	}
	return &UnplacedError{Service: p.Service, Unplaced: p.Unplaced, Requested: p.Requested, Reason: p.Reason}
}

// UnplacedError says that some replicas of a service found no node.
type UnplacedError struct {
	// Service is the service's name.
	Service string
	// Unplaced of Requested replicas found no node.
	Unplaced, Requested int
	// Reason is Plan.Reason.
	Reason string
}

// Error returns a message such as "service web: 2 of 3 replicas not
// placed: no node satisfies: ...".
func (e *UnplacedError) Error() string {
	return fmt.Sprintf("service %s: %d of %d replicas not placed: %s", e.Service, e.Unplaced, e.Requested, e.Reason)
}

// Place chooses a node and host ports for each of req.Count new replicas
// and accounts each one at once, so that the next sees it.
//
// A node can take a replica when it is ready, eligible and not draining,
// not excluded, can use the run's driver, meets every constraint, has the
// replica's CPU and memory free and one free port per port name in its
// range, and, with distinct_hosts, runs no replica of the service yet.
// Among those, Place prefers, in order: with spread "zone", a node in the
// zone with the fewest replicas of the service (ties by zone name); the
// node with the fewest replicas of the service (anti-affinity); the node
// with the most CPU and memory left after placing (placement spread, the
// default; the average of the two fractions of capacity) or the least
// (binpack); the node whose name sorts first. Ports are the lowest free
// ones of the node's range.
//
// The work per replica is logarithmic in the number of nodes (plus linear
// in the number of zones with spread "zone"); each call also scans every
// node once.
func (c *Cluster) Place(req Request) Plan {
	plan := Plan{Service: req.Service, Requested: max(req.Count, 0)}
	n := req.Count
	switch {
	case n <= 0:
		return plan
	case req.Run == nil:
		plan.Unplaced, plan.Reason = n, "no run section"
		return plan
	case len(c.nodes) == 0:
		plan.Unplaced, plan.Reason = n, "no nodes in the cluster"
		return plan
	}
	d := c.newDemand(req.Run)
	c.gen++
	if c.gen == 0 { // wrapped: forget every old mark
		clear(c.mark)
		c.gen = 1
	}
	for _, name := range req.Exclude {
		if i, ok := c.byName[name]; ok {
			c.mark[i] = c.gen
		}
	}
	svc := c.service(req.Service)

	cands := c.cands[:0]
	for i := range c.nodes {
		if v, _ := c.staticCheck(int32(i), &d); v == fits {
			cands = append(cands, cand{node: int32(i)})
		}
	}
	// cands are in node order; look up the nodes that run the service.
	for ni, count := range svc.nodes {
		if j, ok := slices.BinarySearchFunc(cands, ni, func(x cand, t int32) int { return cmp.Compare(x.node, t) }); ok {
			cands[j].count = count
		}
	}
	// At most this many replicas fit, each needing its ports: it bounds
	// the plan's allocation when Count is absurd.
	room := 0
	for j := range cands {
		ns := &c.nodes[cands[j].node]
		cands[j].fit = fit(ns, &d)
		room += ns.ports.free() / len(d.ports)
	}
	c.cands = cands
	buf, groups := c.group(cands, &d)
	for g := range groups {
		heapify(groups[g].heap(buf))
		c.prune(&groups[g], buf, &d)
	}

	plan.Placements = make([]Placement, 0, min(n, room))
	for len(plan.Placements) < n {
		g := pick(groups, svc, &d)
		if g == nil {
			plan.Unplaced = n - len(plan.Placements)
			plan.Reason = c.reason(&d, svc)
			break
		}
		h := g.heap(buf)
		top := &h[0]
		ns := &c.nodes[top.node]
		ports := make(map[string]int, len(d.ports))
		for _, name := range d.ports {
			// dynamicCheck saw enough free ports.
			ports[name], _ = ns.ports.alloc()
		}
		ns.cpuUsed += d.cpu
		ns.memUsed += d.mem
		c.count(svc, top.node, 1)
		top.count++
		top.fit = fit(ns, &d)
		siftDown(h, 0)
		c.prune(g, buf, &d)
		plan.Placements = append(plan.Placements, Placement{Node: ns.name, Ports: ports, Resources: d.res})
	}
	return plan
}

// Replace places one replacement for each of the lost replicas of
// service, on any node but theirs. It first Removes the lost replicas
// from the accounting, so that they count no more toward anti-affinity and
// zone spread (a replacement may go back to the zone its predecessor
// left), and their nodes' resources are free for later calls: the caller
// is expected to stop them. Placements[i].Replaces is the ID of the
// i-th non-nil lost replica.
func (c *Cluster) Replace(service string, run *api.Run, lost []*api.Replica) Plan {
	var exclude []string
	replaced := make([]string, 0, len(lost))
	for _, r := range lost {
		if r == nil {
			continue
		}
		c.Remove(r)
		if r.Node != "" {
			exclude = append(exclude, r.Node)
		}
		replaced = append(replaced, r.ID)
	}
	plan := c.Place(Request{Service: service, Run: run, Count: len(replaced), Exclude: exclude})
	for i := range plan.Placements {
		plan.Placements[i].Replaces = replaced[i]
	}
	return plan
}

// cand is a node that passed the static filters of a call, with what its
// rank depends on. Only placements on the node itself change them.
type cand struct {
	node int32
	// count is the number of replicas of the service on the node.
	count int32
	// fit is higher for a better node: the free fraction after placing
	// (spread) or its opposite (binpack).
	fit int64
}

// better orders candidates: fewer replicas of the service, then better
// fit, then the name sorting first (node indexes follow names).
func (a *cand) better(b *cand) bool {
	if a.count != b.count {
		return a.count < b.count
	}
	if a.fit != b.fit {
		return a.fit > b.fit
	}
	return a.node < b.node
}

// fit scores a node for one more replica of d: the free fractions of CPU
// and memory after placing, in millionths, summed (which orders as their
// average); negated for binpack. The score of a node that cannot take the
// replica means nothing: prune drops such a node before it is chosen.
func fit(ns *nodeState, d *demand) int64 {
	f := ppm(ns.cpuCap-ns.cpuUsed-d.cpu, ns.cpuCap) + ppm(ns.memCap-ns.memUsed-d.mem, ns.memCap)
	if d.binpack {
		return -f
	}
	return f
}

// group is one heap of candidates, buf[start:start+size]; the candidates
// it dropped as infeasible sit right after it.
type group struct {
	zone  int32
	start int
	size  int
}

// heap returns the group's heap in buf.
func (g *group) heap(buf []cand) []cand { return buf[g.start : g.start+g.size] }

// group splits the candidates into one heap per zone with spread "zone",
// else one heap, and returns the buffer the heaps live in.
func (c *Cluster) group(cands []cand, d *demand) ([]cand, []group) {
	groups := c.groups[:0]
	if !d.zoneSpread {
		groups = append(groups, group{size: len(cands)})
		c.groups = groups
		return cands, groups
	}
	// Counting sort by zone, stable, into the second buffer.
	starts := make([]int, len(c.zones)+1)
	for _, x := range cands {
		starts[c.nodes[x.node].zone+1]++
	}
	for z := range c.zones {
		if n := starts[z+1]; n > 0 {
			groups = append(groups, group{zone: int32(z), start: starts[z], size: n})
		}
		starts[z+1] += starts[z]
	}
	sorted := slices.Grow(c.sorted[:0], len(cands))[:len(cands)]
	for _, x := range cands {
		z := c.nodes[x.node].zone
		sorted[starts[z]] = x
		starts[z]++
	}
	c.sorted, c.groups = sorted, groups
	return sorted, groups
}

// prune drops infeasible candidates from the top of g's heap. A node that
// cannot take a replica of this call never can later in the call (its
// free resources only shrink and its count only grows), so dropping is
// final.
func (c *Cluster) prune(g *group, buf []cand, d *demand) {
	for g.size > 0 {
		h := g.heap(buf)
		if dynamicCheck(&c.nodes[h[0].node], h[0].count, d) == fits {
			return
		}
		h[0], h[g.size-1] = h[g.size-1], h[0]
		g.size--
		siftDown(h[:g.size], 0)
	}
}

// pick returns the group to place the next replica in, or nil when every
// group is empty: the one group, or with spread "zone" the zone with the
// fewest replicas of the service (groups are in zone name order).
func pick(groups []group, svc *serviceState, d *demand) *group {
	var best *group
	for i := range groups {
		g := &groups[i]
		if g.size == 0 {
			continue
		}
		if best == nil || (d.zoneSpread && svc.zones[g.zone] < svc.zones[best.zone]) {
			best = g
		}
	}
	return best
}

// heapify orders h as a heap with the best candidate first.
func heapify(h []cand) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

// siftDown moves h[i] down to its place in the heap.
func siftDown(h []cand, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		best := l
		if r := l + 1; r < len(h) && h[r].better(&h[l]) {
			best = r
		}
		if !h[best].better(&h[i]) {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}
