package scheduler

import (
	"fmt"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// nodeOpt changes a test node.
type nodeOpt func(*api.Node)

// mkNode returns a ready, eligible node in zone z1 with the exec driver,
// 4000 millicores, 4096 MiB and ports 20000-20999, changed by opts.
func mkNode(name string, opts ...nodeOpt) *api.Node {
	n := &api.Node{
		Name:     name,
		Zone:     "z1",
		Status:   api.NodeReady,
		Eligible: true,
		Drivers:  map[string]string{api.DriverExec: ""},
		Resources: api.NodeResources{
			CPU: 4000, MemoryMB: 4096, PortMin: 20000, PortMax: 20999,
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func inZone(z string) nodeOpt { return func(n *api.Node) { n.Zone = z } }

func withCapacity(cpu, mem int) nodeOpt {
	return func(n *api.Node) { n.Resources.CPU, n.Resources.MemoryMB = cpu, mem }
}

func withPorts(lo, hi int) nodeOpt {
	return func(n *api.Node) { n.Resources.PortMin, n.Resources.PortMax = lo, hi }
}

func withLabels(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withDrivers(kv ...string) nodeOpt {
	return func(n *api.Node) {
		n.Drivers = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Drivers[kv[i]] = kv[i+1]
		}
	}
}

// rep returns a running replica of service on node reserving cpu and mem,
// with the given ports (named p0, p1, ...).
func rep(id, service, node string, cpu, mem int, ports ...int) *api.Replica {
	r := &api.Replica{
		ID: id, Service: service, Node: node,
		Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthHealthy,
		Resources: api.Resources{CPU: cpu, MemoryMB: mem},
		Ports:     map[string]int{},
	}
	for i, p := range ports {
		r.Ports[fmt.Sprintf("p%d", i)] = p
	}
	return r
}

// execRun returns an exec run section with the given resources (0 for the
// defaults), changed by opts.
func execRun(cpu, mem int, opts ...func(*api.Run)) *api.Run {
	run := &api.Run{Driver: api.DriverExec, Resources: &api.Resources{CPU: cpu, MemoryMB: mem}}
	for _, o := range opts {
		o(run)
	}
	return run
}

func binpack(r *api.Run)      { r.Placement = "binpack" }
func zoneSpread(r *api.Run)   { r.Spread = "zone" }
func withDistinct(r *api.Run) { r.DistinctHosts = true }

func constraint(attr, op string, values ...string) func(*api.Run) {
	return func(r *api.Run) {
		r.Constraints = append(r.Constraints, api.Constraint{Attribute: attr, Op: op, Values: values})
	}
}

func portsNamed(names ...string) func(*api.Run) {
	return func(r *api.Run) {
		for _, n := range names {
			r.Ports = append(r.Ports, api.Port{Name: n})
		}
	}
}

// nodesOf returns the node of each placement.
func nodesOf(p Plan) []string {
	out := make([]string, len(p.Placements))
	for i, pl := range p.Placements {
		out[i] = pl.Node
	}
	return out
}

// countBy returns how many placements each node got.
func countBy(p Plan) map[string]int {
	out := map[string]int{}
	for _, pl := range p.Placements {
		out[pl.Node]++
	}
	return out
}

// place runs one Place and fails the test unless exactly want replicas
// were placed.
func place(t *testing.T, c *Cluster, service string, run *api.Run, n, want int) Plan {
	t.Helper()
	p := c.Place(Request{Service: service, Run: run, Count: n})
	if len(p.Placements) != want || p.Unplaced != n-want {
		t.Fatalf("Place(%s, %d): placed %d, unplaced %d (reason %q), want %d placed", service, n, len(p.Placements), p.Unplaced, p.Reason, want)
	}
	return p
}
