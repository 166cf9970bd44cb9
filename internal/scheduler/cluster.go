package scheduler

import (
	"slices"
	"strings"

	"github.com/herd-cluster/herd/api"
)

// Cluster is the accounting of one planning round: each node's offer and
// what the accounted replicas reserve on it (CPU, memory, host ports), and
// how many replicas of each service run on each node and in each zone.
// Build it with NewCluster; Place, Replace, Add and Remove change it.
//
// A Cluster keeps references to the nodes' Labels and Drivers maps; they
// must not change while it is in use. It is not safe for concurrent use.
type Cluster struct {
	// nodes are sorted by name, so a node's index orders ties.
	nodes  []nodeState
	byName map[string]int32
	// zones are the distinct zone names, sorted; nodeState.zone indexes it.
	zones []string
	// driverBits maps a driver name usable on some node to its bit in
	// nodeState.drivers; names past the 64th are looked up in the node's
	// map instead.
	driverBits map[string]uint64
	services   map[string]*serviceState
	// replicas are the accounted replicas by ID; portPool holds their
	// ports (each replica a slice of it), so accounting N replicas does
	// not allocate N slices.
	replicas map[string]accounted
	portPool []int

	// Scratch space of Place, kept between calls to spare allocations.
	cands  []cand
	sorted []cand
	groups []group
	// mark[i] == gen when node i is excluded from the current call.
	mark []uint32
	gen  uint32
}

// nodeState is one node as the scheduler sees it.
type nodeState struct {
	name    string
	zone    int32
	status  string
	open    bool // Eligible && !Drain
	labels  map[string]string
	drvMap  map[string]string
	drivers uint64 // usable drivers, by driverBits
	cpuCap  int64
	memCap  int64
	cpuUsed int64
	memUsed int64
	ports   portSet
}

// serviceState counts one service's accounted replicas.
type serviceState struct {
	// nodes maps a node index to the replicas on it (absent when none).
	nodes map[int32]int32
	// zones has one count per Cluster zone.
	zones []int32
}

// accounted is what an accounted replica reserves, to release it exactly.
type accounted struct {
	node       int32
	service    string
	cpu, mem   int64
	portsStart int
	portsEnd   int
}

// NewCluster returns the accounting of nodes with every replica that
// HoldsResources. Nil nodes, nodes without a name and repeated names (after
// the first) are ignored, as are nil replicas, replicas on nodes not in
// nodes, and replicas whose ID was already accounted. A replica's recorded
// Resources count, non-positive values as the defaults; its ports count
// when they are in its node's range.
func NewCluster(nodes []*api.Node, replicas []*api.Replica) *Cluster {
	c := &Cluster{
		byName:     make(map[string]int32, len(nodes)),
		driverBits: make(map[string]uint64),
		services:   make(map[string]*serviceState),
		replicas:   make(map[string]accounted, len(replicas)),
	}
	sortedNodes := make([]*api.Node, 0, len(nodes))
	for _, n := range nodes {
		if n != nil && n.Name != "" {
			sortedNodes = append(sortedNodes, n)
		}
	}
	// Stable, so the first of a repeated name wins.
	slices.SortStableFunc(sortedNodes, func(a, b *api.Node) int { return strings.Compare(a.Name, b.Name) })
	sortedNodes = slices.CompactFunc(sortedNodes, func(a, b *api.Node) bool { return a.Name == b.Name })

	zoneSet := make(map[string]int32)
	for _, n := range sortedNodes {
		if _, ok := zoneSet[n.Zone]; !ok {
			zoneSet[n.Zone] = 0
			c.zones = append(c.zones, n.Zone)
		}
	}
	slices.Sort(c.zones)
	for i, z := range c.zones {
		zoneSet[z] = int32(i)
	}

	// One word of port bitset per node from one slab: enough for 64 ports
	// used at the bottom of each range before a node's set grows alone.
	slab := make([]uint64, len(sortedNodes))
	c.nodes = make([]nodeState, len(sortedNodes))
	for i, n := range sortedNodes {
		ns := &c.nodes[i]
		*ns = nodeState{
			name:   n.Name,
			zone:   zoneSet[n.Zone],
			status: n.Status,
			open:   n.Eligible && !n.Drain,
			labels: n.Labels,
			drvMap: n.Drivers,
			cpuCap: amount(n.Resources.CPU),
			memCap: amount(n.Resources.MemoryMB),
		}
		ns.ports.init(n.Resources.PortMin, n.Resources.PortMax, slab[i:i:i+1])
		// The bits only stand for names, so the map's order, which
		// decides which name gets which bit, changes no result.
		for d, reason := range n.Drivers {
			if reason != "" {
				continue
			}
			bit, ok := c.driverBits[d]
			if !ok && len(c.driverBits) < 64 {
				bit = 1 << len(c.driverBits)
				c.driverBits[d] = bit
			}
			ns.drivers |= bit
		}
		c.byName[n.Name] = int32(i)
	}
	c.mark = make([]uint32, len(c.nodes))

	for _, r := range replicas {
		if HoldsResources(r) {
			c.Add(r)
		}
	}
	return c
}

// Add accounts r on its node, whatever its desired state, and reports
// whether it did: a nil replica, one on an unknown node and one whose ID
// is already accounted are not. Place accounts its placements itself; do
// not Add the replicas made from them to the same Cluster.
func (c *Cluster) Add(r *api.Replica) bool {
	if r == nil {
		return false
	}
	ni, ok := c.byName[r.Node]
	if !ok {
		return false
	}
	if _, dup := c.replicas[r.ID]; dup && r.ID != "" {
		return false
	}
	cpu, mem := replicaDemand(r)
	ns := &c.nodes[ni]
	ns.cpuUsed += cpu
	ns.memUsed += mem
	start := len(c.portPool)
	for _, p := range r.Ports {
		if ns.ports.contains(p) {
			ns.ports.claim(p)
			c.portPool = append(c.portPool, p)
		}
	}
	// A replica without an ID is accounted but cannot be removed.
	if r.ID != "" {
		c.replicas[r.ID] = accounted{
			node: ni, service: r.Service, cpu: cpu, mem: mem,
			portsStart: start, portsEnd: len(c.portPool),
		}
	}
	c.count(c.service(r.Service), ni, 1)
	return true
}

// Remove releases what Add or NewCluster accounted for the replica with
// r's ID (its resources, ports and counts, as they were accounted), and
// reports whether there was such a replica.
func (c *Cluster) Remove(r *api.Replica) bool {
	if r == nil {
		return false
	}
	a, ok := c.replicas[r.ID]
	if !ok {
		return false
	}
	delete(c.replicas, r.ID)
	ns := &c.nodes[a.node]
	ns.cpuUsed -= a.cpu
	ns.memUsed -= a.mem
	for _, p := range c.portPool[a.portsStart:a.portsEnd] {
		ns.ports.release(p)
	}
	c.count(c.services[a.service], a.node, -1)
	return true
}

// Used returns what the accounted replicas and placements reserve on the
// named node, and false when the Cluster has no such node.
func (c *Cluster) Used(node string) (api.Resources, bool) {
	ni, ok := c.byName[node]
	if !ok {
		return api.Resources{}, false
	}
	ns := &c.nodes[ni]
	return api.Resources{CPU: int(ns.cpuUsed), MemoryMB: int(ns.memUsed)}, true
}

// Count returns how many accounted replicas of service run on the named
// node.
func (c *Cluster) Count(service, node string) int {
	ni, ok := c.byName[node]
	svc := c.services[service]
	if !ok || svc == nil {
		return 0
	}
	return int(svc.nodes[ni])
}

// PortUsed reports whether port is taken on the named node by an
// accounted replica or a placement.
func (c *Cluster) PortUsed(node string, port int) bool {
	ni, ok := c.byName[node]
	return ok && c.nodes[ni].ports.isUsed(port)
}

// service returns the counts of a service, creating them.
func (c *Cluster) service(name string) *serviceState {
	svc := c.services[name]
	if svc == nil {
		svc = &serviceState{nodes: make(map[int32]int32), zones: make([]int32, len(c.zones))}
		c.services[name] = svc
	}
	return svc
}

// count adds delta replicas of svc on node ni.
func (c *Cluster) count(svc *serviceState, ni int32, delta int32) {
	if svc == nil {
		return
	}
	n := svc.nodes[ni] + delta
	if n <= 0 {
		delete(svc.nodes, ni)
	} else {
		svc.nodes[ni] = n
	}
	svc.zones[c.nodes[ni].zone] += delta
}

// usedPPM returns how much of the node's CPU and memory is reserved, in
// millionths of each, summed (0 to 2,000,000; more when overcommitted by
// odd input). A dimension the node offers none of counts as full.
func (ns *nodeState) usedPPM() int64 {
	return ppm(ns.cpuUsed, ns.cpuCap) + ppm(ns.memUsed, ns.memCap)
}

// ppm returns v/capacity in millionths, between 0 and a million; a
// million when capacity is not positive. Integer arithmetic keeps scores
// identical on every platform.
func ppm(v, capacity int64) int64 {
	if capacity <= 0 || v >= capacity {
		return 1_000_000
	}
	if v <= 0 {
		return 0
	}
	// v < capacity <= maxAmount, so v*1e6 fits in an int64.
	return v * 1_000_000 / capacity
}
