package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// fuzzInput turns fuzz bytes into small numbers; past the end it gives 0.
type fuzzInput struct{ b []byte }

// next returns a number in [0, n).
func (f *fuzzInput) next(n int) int {
	if len(f.b) == 0 {
		return 0
	}
	v := int(f.b[0])
	f.b = f.b[1:]
	return v % n
}

// fuzzCase is a cluster and a series of requests built from fuzz bytes.
type fuzzCase struct {
	nodes    []*api.Node
	replicas []*api.Replica
	requests []Request
}

func buildFuzzCase(data []byte) fuzzCase {
	in := &fuzzInput{b: data}
	var fc fuzzCase
	nNodes := 1 + in.next(8)
	for i := range nNodes {
		n := &api.Node{
			Name:     fmt.Sprintf("n%d", i),
			Zone:     []string{"", "z1", "z2"}[in.next(3)],
			Status:   api.NodeReady,
			Eligible: in.next(8) != 0,
			Drain:    in.next(10) == 0,
			Drivers:  map[string]string{api.DriverExec: ""},
			Resources: api.NodeResources{
				CPU:      in.next(8) * 250,
				MemoryMB: in.next(8) * 256,
				PortMin:  1000 + in.next(4),
			},
		}
		n.Resources.PortMax = n.Resources.PortMin + in.next(6) - 1
		if in.next(8) == 0 {
			n.Status = api.NodeDown
		}
		if in.next(6) == 0 {
			n.Drivers[api.DriverExec] = "not permitted"
		}
		if in.next(2) == 0 {
			n.Drivers[api.DriverDocker] = ""
		}
		if disk := []string{"", "ssd", "hdd"}[in.next(3)]; disk != "" {
			n.Labels = map[string]string{"disk": disk}
		}
		fc.nodes = append(fc.nodes, n)
	}
	services := []string{"web", "api", "db"}
	for i := range in.next(10) {
		r := &api.Replica{
			ID:        fmt.Sprintf("r%d", i),
			Service:   services[in.next(3)],
			Node:      fmt.Sprintf("n%d", in.next(nNodes+1)), // sometimes unknown
			Desired:   []string{api.DesiredRun, api.DesiredStop}[in.next(2)],
			State:     []string{api.ReplicaRunning, api.ReplicaStopped, api.ReplicaLost}[in.next(3)],
			Resources: api.Resources{CPU: in.next(4) * 100, MemoryMB: in.next(4) * 64},
			Ports:     map[string]int{},
		}
		for k := range in.next(3) {
			r.Ports[fmt.Sprintf("p%d", k)] = 998 + in.next(10)
		}
		fc.replicas = append(fc.replicas, r)
	}
	for range 1 + in.next(6) {
		run := &api.Run{
			Driver:        api.DriverExec,
			Resources:     &api.Resources{CPU: in.next(5) * 100, MemoryMB: in.next(5) * 64},
			DistinctHosts: in.next(3) == 0,
		}
		if in.next(4) == 0 {
			run.Driver = api.DriverDocker
		}
		for k := range in.next(3) {
			run.Ports = append(run.Ports, api.Port{Name: fmt.Sprintf("p%d", k)})
		}
		if in.next(2) == 0 {
			run.Spread = "zone"
		}
		if in.next(2) == 0 {
			run.Placement = "binpack"
		}
		switch in.next(6) {
		case 0:
			run.Constraints = []api.Constraint{{Attribute: "disk", Op: api.ConstraintEquals, Values: []string{"ssd"}}}
		case 1:
			run.Constraints = []api.Constraint{{Attribute: "zone", Op: api.ConstraintNot, Values: []string{"z1"}}}
		case 2:
			run.Constraints = []api.Constraint{{Attribute: "node", Op: api.ConstraintIn, Values: []string{"n0", "n1"}}}
		case 3:
			run.Constraints = []api.Constraint{{Attribute: "driver", Op: api.ConstraintEquals, Values: []string{api.DriverDocker}}}
		}
		req := Request{Service: services[in.next(3)], Run: run, Count: in.next(7)}
		if in.next(5) == 0 {
			req.Exclude = []string{"n0"}
		}
		fc.requests = append(fc.requests, req)
	}
	return fc
}

// refNode is the reference model's view of a node.
type refNode struct {
	n        *api.Node
	cpu, mem int64
	ports    map[int]bool
	count    map[string]int
}

// refModel places replicas the slow, obvious way: every node, every
// replica, every check spelled out.
type refModel struct {
	nodes []*refNode // by name
	zones map[string]map[string]int
}

func newRefModel(nodes []*api.Node, replicas []*api.Replica) *refModel {
	m := &refModel{zones: map[string]map[string]int{}}
	byName := map[string]*refNode{}
	for _, n := range nodes {
		rn := &refNode{n: n, ports: map[int]bool{}, count: map[string]int{}}
		m.nodes = append(m.nodes, rn)
		byName[n.Name] = rn
	}
	slices.SortFunc(m.nodes, func(a, b *refNode) int { return strings.Compare(a.n.Name, b.n.Name) })
	for _, r := range replicas {
		rn := byName[r.Node]
		if !HoldsResources(r) || rn == nil {
			continue
		}
		cpu, mem := max(r.Resources.CPU, 0), max(r.Resources.MemoryMB, 0)
		if cpu == 0 {
			cpu = DefaultCPU
		}
		if mem == 0 {
			mem = DefaultMemoryMB
		}
		rn.cpu += int64(cpu)
		rn.mem += int64(mem)
		for _, p := range r.Ports {
			rn.ports[p] = true
		}
		m.add(rn, r.Service)
	}
	return m
}

func (m *refModel) add(rn *refNode, service string) {
	rn.count[service]++
	if m.zones[service] == nil {
		m.zones[service] = map[string]int{}
	}
	m.zones[service][rn.n.Zone]++
}

func (rn *refNode) freePorts() []int {
	var free []int
	for p := rn.n.Resources.PortMin; p <= rn.n.Resources.PortMax; p++ {
		if !rn.ports[p] {
			free = append(free, p)
		}
	}
	return free
}

func (m *refModel) feasible(rn *refNode, req Request, cpu, mem int64, nPorts int) bool {
	n, run := rn.n, req.Run
	if n.Status != api.NodeReady || !n.Eligible || n.Drain || slices.Contains(req.Exclude, n.Name) {
		return false
	}
	if reason, ok := n.Drivers[run.Driver]; !ok || reason != "" {
		return false
	}
	for _, con := range run.Constraints {
		var ok bool
		switch con.Attribute {
		case "zone":
			ok = (con.Op == api.ConstraintNot) != slices.Contains(con.Values, n.Zone)
		case "node":
			ok = slices.Contains(con.Values, n.Name)
		case "driver":
			reason, present := n.Drivers[con.Values[0]]
			ok = present && reason == ""
		default:
			ok = n.Labels[con.Attribute] == con.Values[0]
		}
		if !ok {
			return false
		}
	}
	if int64(n.Resources.CPU)-rn.cpu < cpu || int64(n.Resources.MemoryMB)-rn.mem < mem {
		return false
	}
	if len(rn.freePorts()) < nPorts {
		return false
	}
	return !run.DistinctHosts || rn.count[req.Service] == 0
}

func (m *refModel) place(req Request) Plan {
	plan := Plan{Service: req.Service, Requested: max(req.Count, 0)}
	res := ReplicaResources(req.Run)
	cpu, mem := int64(res.CPU), int64(res.MemoryMB)
	names := PortNames(req.Run)
	frac := func(free, capacity int64) int64 { return max(free, 0) * 1_000_000 / capacity }
	for range req.Count {
		var feasible []*refNode
		for _, rn := range m.nodes {
			if m.feasible(rn, req, cpu, mem, len(names)) {
				feasible = append(feasible, rn)
			}
		}
		if req.Run.Spread == "zone" && len(feasible) > 0 {
			best := ""
			first := true
			for _, rn := range feasible {
				z := rn.n.Zone
				if first || m.zones[req.Service][z] < m.zones[req.Service][best] ||
					(m.zones[req.Service][z] == m.zones[req.Service][best] && z < best) {
					best, first = z, false
				}
			}
			feasible = slices.DeleteFunc(feasible, func(rn *refNode) bool { return rn.n.Zone != best })
		}
		var best *refNode
		var bestFit int64
		for _, rn := range feasible { // in name order: ties keep the first
			fit := frac(int64(rn.n.Resources.CPU)-rn.cpu-cpu, int64(rn.n.Resources.CPU)) +
				frac(int64(rn.n.Resources.MemoryMB)-rn.mem-mem, int64(rn.n.Resources.MemoryMB))
			if req.Run.Placement == "binpack" {
				fit = -fit
			}
			if best == nil || rn.count[req.Service] < best.count[req.Service] ||
				(rn.count[req.Service] == best.count[req.Service] && fit > bestFit) {
				best, bestFit = rn, fit
			}
		}
		if best == nil {
			plan.Unplaced++
			continue
		}
		pl := Placement{Node: best.n.Name, Ports: map[string]int{}, Resources: res}
		free := best.freePorts()
		for i, name := range names {
			pl.Ports[name] = free[i]
			best.ports[free[i]] = true
		}
		best.cpu += cpu
		best.mem += mem
		m.add(best, req.Service)
		plan.Placements = append(plan.Placements, pl)
	}
	return plan
}

func FuzzPlace(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x07\x01\x03\x05\x07\x02\x04\x06\x03\x01\x05\x02\x04\x09\x00\x01\x02\x03\x04\x05\x06\x07\x08"))
	f.Add([]byte("herd schedules replicas over nodes and zones, deterministically"))
	f.Add([]byte{7, 1, 1, 0, 7, 7, 1, 3, 1, 1, 2, 1, 2, 0, 7, 7, 2, 5, 1, 1, 0, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 4, 0, 2, 2, 0, 0, 0, 6, 5, 1, 1, 0, 1, 2, 1, 0, 3, 6})
	f.Fuzz(checkPlace)
}

// TestPlaceMatchesReference runs FuzzPlace's checks on pseudo-random
// inputs, so that plain `go test` compares Place with the reference model
// on many clusters, not only on the seeds.
func TestPlaceMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		data := make([]byte, 40+rng.IntN(200))
		for k := range data {
			data[k] = byte(rng.Uint32())
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkPlace(t, data) })
	}
}

// checkPlace builds a cluster and requests from data, places them, and
// checks the plans against the reference model and the invariants: no
// node over capacity, no port used twice on a node or outside its range,
// distinct_hosts kept, only usable nodes chosen, the same plans twice.
func checkPlace(t *testing.T, data []byte) {
	fc := buildFuzzCase(data)
	run := func() []Plan {
		c := NewCluster(fc.nodes, fc.replicas)
		var plans []Plan
		for _, req := range fc.requests {
			plans = append(plans, c.Place(req))
		}
		return plans
	}
	plans := run()
	if again := run(); !reflect.DeepEqual(plans, again) {
		t.Fatal("same input, different plans")
	}

	// The reference model chooses the same nodes and ports.
	model := newRefModel(fc.nodes, fc.replicas)
	for i, req := range fc.requests {
		want := model.place(req)
		got := plans[i]
		same := got.Unplaced == want.Unplaced && len(got.Placements) == len(want.Placements)
		if same && len(want.Placements) > 0 {
			same = reflect.DeepEqual(got.Placements, want.Placements)
		}
		if !same {
			t.Fatalf("request %d (%+v, run %+v):\n got %+v\nwant %+v", i, req, *req.Run, got, want)
		}
		if got.Unplaced > 0 && !strings.HasPrefix(got.Reason, "no node satisfies: ") {
			t.Fatalf("request %d: unplaced with reason %q", i, got.Reason)
		}
		if got.Unplaced == 0 && got.Reason != "" {
			t.Fatalf("request %d: all placed with reason %q", i, got.Reason)
		}
	}

	// Invariants, from the plans alone.
	byName := map[string]*api.Node{}
	for _, n := range fc.nodes {
		byName[n.Name] = n
	}
	type usage struct {
		cpu, mem int
		ports    map[int]bool
		count    map[string]int
		placed   bool
	}
	use := map[string]*usage{}
	get := func(node string) *usage {
		if use[node] == nil {
			use[node] = &usage{ports: map[int]bool{}, count: map[string]int{}}
		}
		return use[node]
	}
	for _, r := range fc.replicas {
		if HoldsResources(r) && byName[r.Node] != nil {
			u := get(r.Node)
			res := r.Resources
			if res.CPU <= 0 {
				res.CPU = DefaultCPU
			}
			if res.MemoryMB <= 0 {
				res.MemoryMB = DefaultMemoryMB
			}
			u.cpu += res.CPU
			u.mem += res.MemoryMB
			for _, p := range r.Ports {
				u.ports[p] = true
			}
			u.count[r.Service]++
		}
	}
	for i, p := range plans {
		req := fc.requests[i]
		for _, pl := range p.Placements {
			n := byName[pl.Node]
			if n == nil {
				t.Fatalf("placed on unknown node %q", pl.Node)
			}
			u := get(pl.Node)
			if req.Run.DistinctHosts && u.count[req.Service] > 0 {
				t.Fatalf("distinct_hosts: second replica of %s on %s", req.Service, pl.Node)
			}
			u.cpu += pl.Resources.CPU
			u.mem += pl.Resources.MemoryMB
			u.count[req.Service]++
			u.placed = true
			if len(pl.Ports) != len(PortNames(req.Run)) {
				t.Fatalf("ports %v for names %v", pl.Ports, PortNames(req.Run))
			}
			for _, port := range pl.Ports {
				if u.ports[port] {
					t.Fatalf("port %d used twice on %s", port, pl.Node)
				}
				if port < n.Resources.PortMin || port > n.Resources.PortMax {
					t.Fatalf("port %d outside %s's range", port, pl.Node)
				}
				u.ports[port] = true
			}
			if n.Status != api.NodeReady || !n.Eligible || n.Drain || slices.Contains(req.Exclude, n.Name) {
				t.Fatalf("placed on %s: %+v", n.Name, n)
			}
		}
	}
	for name, u := range use {
		n := byName[name]
		if u.placed && (u.cpu > n.Resources.CPU || u.mem > n.Resources.MemoryMB) {
			t.Fatalf("node %s over capacity: %d/%d millicores, %d/%d MiB", name, u.cpu, n.Resources.CPU, u.mem, n.Resources.MemoryMB)
		}
	}
}
