package scheduler

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// benchNodes returns n ready nodes over three zones, each with 16 cores,
// 32 GiB and 1,000 ports, with labels for constraints.
func benchNodes(n int) []*api.Node {
	nodes := make([]*api.Node, n)
	for i := range nodes {
		nodes[i] = &api.Node{
			Name:     fmt.Sprintf("node-%05d", i),
			Zone:     fmt.Sprintf("zone-%d", i%3),
			Labels:   map[string]string{"disk": []string{"ssd", "hdd"}[i%2]},
			Status:   api.NodeReady,
			Eligible: true,
			Drivers:  map[string]string{api.DriverExec: "", api.DriverDocker: ""},
			Resources: api.NodeResources{
				CPU: 16000, MemoryMB: 32768, PortMin: 20000, PortMax: 20999,
			},
		}
	}
	return nodes
}

// benchReplicas returns perNode existing replicas on each node, of 50
// services, each with one port.
func benchReplicas(nodes []*api.Node, perNode int) []*api.Replica {
	var rs []*api.Replica
	for i, n := range nodes {
		for k := range perNode {
			rs = append(rs, &api.Replica{
				ID:        fmt.Sprintf("r-%d-%d", i, k),
				Service:   fmt.Sprintf("svc-%d", (i+k)%50),
				Node:      n.Name,
				Ports:     map[string]int{"http": 20000 + k},
				Desired:   api.DesiredRun,
				State:     api.ReplicaRunning,
				Resources: api.Resources{CPU: 250, MemoryMB: 256},
			})
		}
	}
	return rs
}

// mallocs returns the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// reportPerPlacement adds ns/placement and allocs/placement to b's
// results, from the placements and allocations of the timed part.
func reportPerPlacement(b *testing.B, placements int, allocs uint64) {
	b.Helper()
	if placements == 0 {
		b.Fatal("nothing placed")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(placements), "ns/placement")
	b.ReportMetric(float64(allocs)/float64(placements), "allocs/placement")
}

// BenchmarkPlace10kOn1k is one planning round: build the accounting of
// 1,000 nodes and place 10,000 replicas of one service in one call.
func BenchmarkPlace10kOn1k(b *testing.B) {
	nodes := benchNodes(1000)
	for _, bc := range []struct {
		name string
		run  *api.Run
	}{
		{"spread", &api.Run{Driver: api.DriverExec}},
		{"binpack", &api.Run{Driver: api.DriverExec, Placement: "binpack"}},
		{"zone", &api.Run{Driver: api.DriverExec, Spread: "zone"}},
		{"constraint", &api.Run{Driver: api.DriverExec, Constraints: []api.Constraint{
			{Attribute: "disk", Op: api.ConstraintEquals, Values: []string{"ssd"}}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			placed := 0
			var allocs uint64
			for b.Loop() {
				before := mallocs()
				c := NewCluster(nodes, nil)
				p := c.Place(Request{Service: "web", Run: bc.run, Count: 10000})
				allocs += mallocs() - before
				if p.Unplaced != 0 {
					b.Fatalf("unplaced %d: %s", p.Unplaced, p.Reason)
				}
				placed += len(p.Placements)
			}
			reportPerPlacement(b, placed, allocs)
		})
	}
}

// BenchmarkPlaceNodes shows how the cost of a placement grows with the
// number of nodes: on N nodes already running 5 replicas each, a round
// places 10 replicas of each of N/10 new services (N placements, in N/10
// calls). The accounting is built outside the timer.
func BenchmarkPlaceNodes(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		nodes := benchNodes(n)
		existing := benchReplicas(nodes, 5)
		runs := []*api.Run{
			{Driver: api.DriverExec},
			{Driver: api.DriverExec, Placement: "binpack"},
			{Driver: api.DriverExec, Spread: "zone", Resources: &api.Resources{CPU: 500, MemoryMB: 512}},
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			placed := 0
			var allocs uint64
			for b.Loop() {
				b.StopTimer()
				c := NewCluster(nodes, existing)
				before := mallocs()
				b.StartTimer()
				for s := range n / 10 {
					p := c.Place(Request{Service: fmt.Sprintf("new-%d", s), Run: runs[s%len(runs)], Count: 10})
					placed += len(p.Placements)
				}
				b.StopTimer()
				allocs += mallocs() - before
				b.StartTimer()
			}
			reportPerPlacement(b, placed, allocs)
		})
	}
}

// BenchmarkPlaceOne is the smallest call, one replica, whose cost is the
// scan of every node.
func BenchmarkPlaceOne(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		nodes := benchNodes(n)
		for _, nd := range nodes {
			nd.Resources.CPU, nd.Resources.MemoryMB, nd.Resources.PortMax = 1<<30, 1<<30, 65535
		}
		c := NewCluster(nodes, benchReplicas(nodes, 5))
		run := &api.Run{Driver: api.DriverExec}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p := c.Place(Request{Service: "web", Run: run, Count: 1}); p.Unplaced != 0 {
					b.Fatal(p.Reason)
				}
			}
		})
	}
}

// BenchmarkNewCluster builds the accounting of N nodes running 10
// replicas each, as every planning round does.
func BenchmarkNewCluster(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		nodes := benchNodes(n)
		existing := benchReplicas(nodes, 10)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewCluster(nodes, existing)
			}
		})
	}
}

// BenchmarkPickStop chooses 500 of 1,000 replicas to stop.
func BenchmarkPickStop(b *testing.B) {
	nodes := benchNodes(100)
	existing := benchReplicas(nodes, 10)
	c := NewCluster(nodes, existing)
	b.ReportAllocs()
	for b.Loop() {
		c.PickStop(nil, existing, 500)
	}
}
