package scheduler

import (
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// TestFilters checks each filter alone: node "a" fails it and node "b"
// does not. Placement is binpack and "a" sorts first, so without the
// filter the replica would go to "a"; alone, "a" yields wantReason.
func TestFilters(t *testing.T) {
	tests := []struct {
		name       string
		bad        []nodeOpt
		existing   []*api.Replica // on a
		run        []func(*api.Run)
		exclude    []string
		wantNode   string // default b
		wantReason string // "" when a alone takes the replica
	}{
		{name: "down", bad: []nodeOpt{func(n *api.Node) { n.Status = api.NodeDown }},
			wantReason: "no node satisfies: not ready on 1 node"},
		{name: "status unknown", bad: []nodeOpt{func(n *api.Node) { n.Status = api.NodeUnknown }},
			wantReason: "no node satisfies: not ready on 1 node"},
		{name: "ineligible", bad: []nodeOpt{func(n *api.Node) { n.Eligible = false }},
			wantReason: "no node satisfies: ineligible on 1 node"},
		{name: "draining", bad: []nodeOpt{func(n *api.Node) { n.Drain = true }},
			wantReason: "no node satisfies: ineligible on 1 node"},
		{name: "excluded", exclude: []string{"a", "no-such-node"},
			wantReason: "no node satisfies: excluded on 1 node"},
		{name: "driver absent", bad: []nodeOpt{withDrivers(api.DriverDocker, "")},
			wantReason: "no node satisfies: driver exec unavailable on 1 node"},
		{name: "driver unusable", bad: []nodeOpt{withDrivers(api.DriverExec, "exec: not permitted")},
			wantReason: "no node satisfies: driver exec unavailable on 1 node"},
		{name: "cpu capacity", bad: []nodeOpt{withCapacity(99, 4096)},
			wantReason: "no node satisfies: cpu 100 millicores > free 99 millicores on 1 node"},
		{name: "cpu used", existing: []*api.Replica{rep("o-1", "other", "a", 3901, 1)},
			wantReason: "no node satisfies: cpu 100 millicores > free 99 millicores on 1 node"},
		{name: "cpu exact fit", bad: []nodeOpt{withCapacity(100, 64)}, wantNode: "a"},
		{name: "memory", bad: []nodeOpt{withCapacity(4000, 63)},
			wantReason: "no node satisfies: memory 64 MiB > free 63 MiB on 1 node"},
		{name: "memory used", existing: []*api.Replica{rep("o-1", "other", "a", 1, 4000)},
			run:        []func(*api.Run){func(r *api.Run) { r.Resources.MemoryMB = 100 }},
			wantReason: "no node satisfies: memory 100 MiB > free 96 MiB on 1 node"},
		{name: "port range inverted", bad: []nodeOpt{withPorts(20010, 20000)},
			wantReason: "no node satisfies: ports 1 > free 0 on 1 node"},
		{name: "port range used", bad: []nodeOpt{withPorts(20000, 20000)},
			existing:   []*api.Replica{rep("o-1", "other", "a", 1, 1, 20000)},
			wantReason: "no node satisfies: ports 1 > free 0 on 1 node"},
		{name: "two ports, one free", bad: []nodeOpt{withPorts(20000, 20001)},
			existing:   []*api.Replica{rep("o-1", "other", "a", 1, 1, 20001)},
			run:        []func(*api.Run){portsNamed("http", "admin")},
			wantReason: "no node satisfies: ports 2 > free 1 on 1 node"},
		{name: "distinct_hosts", existing: []*api.Replica{rep("web-1", "web", "a", 1, 1)},
			run:        []func(*api.Run){withDistinct},
			wantReason: "no node satisfies: distinct_hosts: every feasible node already runs a replica"},
		{name: "zone equals", run: []func(*api.Run){constraint("zone", api.ConstraintEquals, "z2")},
			wantReason: "no node satisfies: constraint zone equals [z2] excludes 1 node"},
		{name: "zone in", run: []func(*api.Run){constraint("zone", api.ConstraintIn, "z3", "z2")},
			wantReason: "no node satisfies: constraint zone in [z3, z2] excludes 1 node"},
		{name: "zone not", run: []func(*api.Run){constraint("zone", api.ConstraintNot, "z1", "z3")},
			wantReason: "no node satisfies: constraint zone not [z1, z3] excludes 1 node"},
		{name: "node equals", run: []func(*api.Run){constraint("node", api.ConstraintEquals, "b")},
			wantReason: "no node satisfies: constraint node equals [b] excludes 1 node"},
		{name: "node not", run: []func(*api.Run){constraint("node", api.ConstraintNot, "a")},
			wantReason: "no node satisfies: constraint node not [a] excludes 1 node"},
		{name: "driver attribute", run: []func(*api.Run){constraint("driver", api.ConstraintIn, api.DriverDocker)},
			wantReason: "no node satisfies: constraint driver in [docker] excludes 1 node"},
		{name: "driver attribute not", bad: []nodeOpt{withDrivers(api.DriverExec, "", "qemu", "")},
			run:        []func(*api.Run){constraint("driver", api.ConstraintNot, "qemu", "jail")},
			wantReason: "no node satisfies: constraint driver not [qemu, jail] excludes 1 node"},
		{name: "driver attribute counts usable drivers only", bad: []nodeOpt{withDrivers(api.DriverExec, "", api.DriverDocker, "no engine")},
			run:        []func(*api.Run){constraint("driver", api.ConstraintEquals, api.DriverDocker)},
			wantReason: "no node satisfies: constraint driver equals [docker] excludes 1 node"},
		{name: "label prefixed", run: []func(*api.Run){constraint("labels.disk", api.ConstraintEquals, "ssd")},
			wantReason: "no node satisfies: constraint labels.disk equals [ssd] excludes 1 node"},
		{name: "label bare", run: []func(*api.Run){constraint("disk", api.ConstraintIn, "ssd", "nvme")},
			wantReason: "no node satisfies: constraint disk in [ssd, nvme] excludes 1 node"},
		{name: "label not", run: []func(*api.Run){constraint("disk", api.ConstraintNot, "hdd")},
			wantReason: "no node satisfies: constraint disk not [hdd] excludes 1 node"},
		{name: "missing label fails equals", run: []func(*api.Run){constraint("rack", api.ConstraintEquals, "r1")},
			wantReason: "no node satisfies: constraint rack equals [r1] excludes 1 node"},
		{name: "missing label fails in", run: []func(*api.Run){constraint("labels.rack", api.ConstraintIn, "r1")},
			wantReason: "no node satisfies: constraint labels.rack in [r1] excludes 1 node"},
		{name: "missing label is not an empty value", run: []func(*api.Run){constraint("rack", api.ConstraintIn, "", "r1")},
			wantReason: "no node satisfies: constraint rack in [, r1] excludes 1 node"},
		{name: "missing label passes not", run: []func(*api.Run){constraint("gpu", api.ConstraintNot, "yes")},
			wantNode: "a"},
		{name: "every constraint must hold", run: []func(*api.Run){
			constraint("zone", api.ConstraintIn, "z1", "z2"),
			constraint("disk", api.ConstraintEquals, "ssd"),
		}, wantReason: "no node satisfies: constraint disk equals [ssd] excludes 1 node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := func() *api.Node {
				return mkNode("a", append([]nodeOpt{inZone("z1"), withLabels("disk", "hdd")}, tc.bad...)...)
			}
			good := mkNode("b", inZone("z2"), withLabels("disk", "ssd", "rack", "r1"),
				withDrivers(api.DriverExec, "", api.DriverDocker, ""))
			run := execRun(0, 0, append([]func(*api.Run){binpack}, tc.run...)...)
			want := tc.wantNode
			if want == "" {
				want = "b"
			}

			c := NewCluster([]*api.Node{good, bad()}, tc.existing)
			p := c.Place(Request{Service: "web", Run: run, Count: 1, Exclude: tc.exclude})
			if got := nodesOf(p); !slices.Equal(got, []string{want}) {
				t.Fatalf("with a and b: placed on %v (reason %q), want [%s]", got, p.Reason, want)
			}

			c = NewCluster([]*api.Node{bad()}, tc.existing)
			p = c.Place(Request{Service: "web", Run: run, Count: 1, Exclude: tc.exclude})
			if tc.wantReason == "" {
				if got := nodesOf(p); !slices.Equal(got, []string{"a"}) {
					t.Fatalf("a alone: placed on %v (reason %q), want [a]", got, p.Reason)
				}
				return
			}
			if len(p.Placements) != 0 || p.Unplaced != 1 {
				t.Fatalf("a alone: placed %v, unplaced %d; want none placed", nodesOf(p), p.Unplaced)
			}
			if p.Reason != tc.wantReason {
				t.Errorf("reason:\n got %q\nwant %q", p.Reason, tc.wantReason)
			}
		})
	}
}

func TestReasonMessage(t *testing.T) {
	docker := withDrivers(api.DriverDocker, "")
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing []*api.Replica
		run      *api.Run
		want     string
	}{
		{
			name: "counts per reason, most first",
			nodes: []*api.Node{
				mkNode("m1", inZone("eu"), docker, withCapacity(4000, 2048)),
				mkNode("m2", inZone("eu"), docker, withCapacity(4000, 512)),
				mkNode("m3", inZone("eu"), docker, withCapacity(4000, 1024)),
				mkNode("u1", inZone("us"), docker, withCapacity(4000, 8192)),
				mkNode("u2", inZone("us"), docker, withCapacity(4000, 8192)),
				mkNode("d1", inZone("eu"), withDrivers(api.DriverDocker, "no docker engine"), withCapacity(4000, 8192)),
			},
			existing: []*api.Replica{rep("o-1", "other", "m1", 100, 1024)},
			run: &api.Run{Driver: api.DriverDocker, Resources: &api.Resources{MemoryMB: 4096},
				Constraints: []api.Constraint{{Attribute: "zone", Op: api.ConstraintIn, Values: []string{"eu"}}}},
			want: "no node satisfies: memory 4096 MiB > free 1024 MiB on 3 nodes; constraint zone in [eu] excludes 2 nodes; driver docker unavailable on 1 node",
		},
		{
			name: "equal counts in the order of the checks",
			nodes: []*api.Node{
				mkNode("c1", func(n *api.Node) { n.Zone = "z9" }),
				mkNode("c2", withLabels("disk", "hdd")),
				mkNode("cpu", withCapacity(50, 4096), withLabels("disk", "ssd")),
				mkNode("down", func(n *api.Node) { n.Status = api.NodeDown }),
				mkNode("drain", func(n *api.Node) { n.Drain = true }),
				mkNode("off", func(n *api.Node) { n.Eligible = false }),
			},
			run: execRun(0, 0, constraint("zone", api.ConstraintEquals, "z1"), constraint("disk", api.ConstraintEquals, "ssd")),
			want: "no node satisfies: ineligible on 2 nodes; not ready on 1 node; " +
				"constraint zone equals [z1] excludes 1 node; constraint disk equals [ssd] excludes 1 node; " +
				"cpu 100 millicores > free 50 millicores on 1 node",
		},
		{
			name:  "free shown never below zero",
			nodes: []*api.Node{mkNode("a", withCapacity(100, 4096))},
			// Odd input: the node is already overcommitted.
			existing: []*api.Replica{rep("o-1", "other", "a", 300, 64)},
			run:      execRun(0, 0),
			want:     "no node satisfies: cpu 100 millicores > free 0 millicores on 1 node",
		},
		{
			name:  "no nodes",
			nodes: nil,
			run:   execRun(0, 0),
			want:  "no nodes in the cluster",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(tc.nodes, tc.existing)
			p := c.Place(Request{Service: "web", Run: tc.run, Count: 2})
			if len(p.Placements) != 0 || p.Unplaced != 2 {
				t.Fatalf("placed %v, unplaced %d; want none placed", nodesOf(p), p.Unplaced)
			}
			if p.Reason != tc.want {
				t.Errorf("reason:\n got %q\nwant %q", p.Reason, tc.want)
			}
		})
	}
}

func TestPlanErr(t *testing.T) {
	c := NewCluster([]*api.Node{mkNode("a", withCapacity(250, 4096))}, nil)
	p := c.Place(Request{Service: "web", Run: execRun(100, 0), Count: 3})
	err := p.Err()
	var ue *UnplacedError
	if !errors.As(err, &ue) {
		t.Fatalf("Err() = %v, want an *UnplacedError", err)
	}
	if ue.Service != "web" || ue.Unplaced != 1 || ue.Requested != 3 {
		t.Errorf("UnplacedError = %+v", ue)
	}
	want := "service web: 1 of 3 replicas not placed: no node satisfies: cpu 100 millicores > free 50 millicores on 1 node"
	if err.Error() != want {
		t.Errorf("Error():\n got %q\nwant %q", err.Error(), want)
	}
	ok := c.Place(Request{Service: "x", Run: execRun(1, 1), Count: 1})
	if err := ok.Err(); err != nil {
		t.Errorf("Err() of a full plan = %v, want nil", err)
	}
}

func TestSpreadAndBinpack(t *testing.T) {
	// a: half used; b: empty; c: empty but half the size of a and b.
	nodes := func() []*api.Node {
		return []*api.Node{mkNode("a"), mkNode("b"), mkNode("c", withCapacity(2000, 2048))}
	}
	existing := []*api.Replica{rep("o-1", "other", "a", 2000, 2048)}
	tests := []struct {
		name string
		run  *api.Run
		want string
	}{
		{name: "spread is the default", run: execRun(100, 64), want: "b"},
		{name: "spread", run: execRun(100, 64, func(r *api.Run) { r.Placement = "spread" }), want: "b"},
		{name: "unknown placement is spread", run: execRun(100, 64, func(r *api.Run) { r.Placement = "best" }), want: "b"},
		{name: "binpack fills the fullest", run: execRun(100, 64, binpack), want: "a"},
		// After placing 1000/1024, c is at half (0.5+0.5) and a at a quarter
		// free (0.25+0.25): binpack takes a, spread takes b (0.75+0.75).
		{name: "binpack by fraction after placing", run: execRun(1000, 1024, binpack), want: "a"},
		// a has 2000/2048 free: exactly fits.
		{name: "binpack exact fit", run: execRun(2000, 2048, binpack), want: "a"},
		// Too big for a and c: binpack takes the least free node that fits.
		{name: "binpack skips what does not fit", run: execRun(2500, 64, binpack), want: "b"},
		// Spread compares fractions, not amounts: c with 1000 of 2000 left
		// (0.5) loses to a with 1000 of 4000 left (0.25)? No: spread takes
		// the most free, b.
		{name: "spread by fraction", run: execRun(1000, 64), want: "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(nodes(), existing)
			p := place(t, c, "web", tc.run, 1, 1)
			if p.Placements[0].Node != tc.want {
				t.Errorf("placed on %s, want %s", p.Placements[0].Node, tc.want)
			}
		})
	}

	// Without b, spread prefers c (fully free, even though smaller) and
	// binpack prefers a.
	for _, tc := range []struct {
		run  *api.Run
		want string
	}{{execRun(100, 64), "c"}, {execRun(100, 64, binpack), "a"}} {
		c := NewCluster([]*api.Node{mkNode("a"), mkNode("c", withCapacity(2000, 2048))}, existing)
		if p := place(t, c, "web", tc.run, 1, 1); p.Placements[0].Node != tc.want {
			t.Errorf("placement %q: placed on %s, want %s", tc.run.Placement, p.Placements[0].Node, tc.want)
		}
	}
}

func TestBinpackFillsAcrossServices(t *testing.T) {
	// Replicas of different services have no anti-affinity: binpack puts
	// them all on one node until it is full.
	c := NewCluster([]*api.Node{mkNode("a", withCapacity(1000, 4096)), mkNode("b", withCapacity(1000, 4096))}, nil)
	var got []string
	for _, svc := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		got = append(got, nodesOf(place(t, c, svc, execRun(250, 64, binpack), 1, 1))...)
	}
	if want := []string{"a", "a", "a", "a", "b", "b"}; !slices.Equal(got, want) {
		t.Errorf("binpack: %v, want %v", got, want)
	}
	// Spread alternates.
	c = NewCluster([]*api.Node{mkNode("a", withCapacity(1000, 4096)), mkNode("b", withCapacity(1000, 4096))}, nil)
	got = nil
	for _, svc := range []string{"s1", "s2", "s3", "s4"} {
		got = append(got, nodesOf(place(t, c, svc, execRun(250, 64), 1, 1))...)
	}
	if want := []string{"a", "b", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("spread: %v, want %v", got, want)
	}
}

func TestAntiAffinity(t *testing.T) {
	three := func() []*api.Node { return []*api.Node{mkNode("a"), mkNode("b"), mkNode("c")} }
	tests := []struct {
		name     string
		nodes    []*api.Node
		existing []*api.Replica
		run      *api.Run
		n        int
		want     map[string]int
	}{
		{name: "binpack 3 on 3 nodes", nodes: three(), run: execRun(0, 0, binpack), n: 3,
			want: map[string]int{"a": 1, "b": 1, "c": 1}},
		{name: "binpack 7 on 3 nodes", nodes: three(), run: execRun(0, 0, binpack), n: 7,
			want: map[string]int{"a": 3, "b": 2, "c": 2}},
		{name: "spread 6 on 3 nodes", nodes: three(), run: execRun(0, 0), n: 6,
			want: map[string]int{"a": 2, "b": 2, "c": 2}},
		{
			// a is the emptiest, but already runs web.
			name: "existing replicas count", nodes: three(),
			existing: []*api.Replica{
				rep("web-1", "web", "a", 1, 1),
				rep("o-1", "other", "b", 2000, 2000),
				rep("o-2", "other", "c", 1000, 1000),
			},
			run: execRun(0, 0), n: 2, want: map[string]int{"b": 1, "c": 1},
		},
		{
			// Anti-affinity is a preference: b and c have no room left.
			name: "not a hard rule",
			nodes: []*api.Node{mkNode("a"), mkNode("b", withCapacity(4000, 10)),
				mkNode("c", withCapacity(50, 4096))},
			existing: []*api.Replica{rep("web-1", "web", "a", 1, 1)},
			run:      execRun(0, 0, binpack), n: 2, want: map[string]int{"a": 2},
		},
		{
			name:  "other services do not count",
			nodes: three(),
			existing: []*api.Replica{
				rep("o-1", "other", "a", 1, 1), rep("o-2", "other", "b", 1, 1),
			},
			run: execRun(0, 0, binpack), n: 1, want: map[string]int{"a": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(tc.nodes, tc.existing)
			p := place(t, c, "web", tc.run, tc.n, tc.n)
			if got := countBy(p); !maps.Equal(got, tc.want) {
				t.Errorf("placements per node %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDistinctHosts(t *testing.T) {
	nodes := []*api.Node{mkNode("a"), mkNode("b"), mkNode("c"), mkNode("d", func(n *api.Node) { n.Status = api.NodeDown })}
	c := NewCluster(nodes, []*api.Replica{rep("web-1", "web", "b", 1, 1)})
	p := c.Place(Request{Service: "web", Run: execRun(0, 0, withDistinct, binpack), Count: 4})
	if got := countBy(p); !maps.Equal(got, map[string]int{"a": 1, "c": 1}) {
		t.Errorf("placements per node %v, want a and c once", got)
	}
	want := "no node satisfies: distinct_hosts: every feasible node already runs a replica; not ready on 1 node"
	if p.Unplaced != 2 || p.Reason != want {
		t.Errorf("unplaced %d, reason %q; want 2, %q", p.Unplaced, p.Reason, want)
	}
	// The next call sees the placements, and other services are free.
	if p := c.Place(Request{Service: "web", Run: execRun(0, 0, withDistinct), Count: 1}); p.Unplaced != 1 {
		t.Errorf("a later call placed on %v", nodesOf(p))
	}
	place(t, c, "api", execRun(0, 0, withDistinct), 3, 3)
}

func TestSpreadZone(t *testing.T) {
	// z1 has three nodes, z2 one, z3 two.
	nodes := func(opts ...nodeOpt) []*api.Node {
		return []*api.Node{
			mkNode("a1", inZone("z1")), mkNode("a2", inZone("z1")), mkNode("a3", inZone("z1")),
			mkNode("b1", append([]nodeOpt{inZone("z2")}, opts...)...),
			mkNode("c1", inZone("z3")), mkNode("c2", inZone("z3")),
		}
	}
	zoneOf := map[string]string{"a1": "z1", "a2": "z1", "a3": "z1", "b1": "z2", "c1": "z3", "c2": "z3"}
	perZone := func(p Plan) map[string]int {
		out := map[string]int{}
		for _, pl := range p.Placements {
			out[zoneOf[pl.Node]]++
		}
		return out
	}
	tests := []struct {
		name     string
		nodeOpts []nodeOpt // for b1
		existing []*api.Replica
		run      *api.Run
		n        int
		want     map[string]int
	}{
		{name: "6 over 3 zones", run: execRun(0, 0, zoneSpread), n: 6,
			want: map[string]int{"z1": 2, "z2": 2, "z3": 2}},
		{name: "6 over 3 zones with binpack", run: execRun(0, 0, zoneSpread, binpack), n: 6,
			want: map[string]int{"z1": 2, "z2": 2, "z3": 2}},
		{name: "existing replicas count",
			existing: []*api.Replica{rep("web-1", "web", "a1", 1, 1), rep("web-2", "web", "a2", 1, 1)},
			run:      execRun(0, 0, zoneSpread), n: 3,
			want: map[string]int{"z2": 2, "z3": 1}},
		{name: "a zone without feasible nodes is skipped", nodeOpts: []nodeOpt{withCapacity(4000, 10)},
			run: execRun(0, 0, zoneSpread), n: 6,
			want: map[string]int{"z1": 3, "z3": 3}},
		{name: "a zone that fills up is skipped", nodeOpts: []nodeOpt{withCapacity(150, 4096)},
			run: execRun(100, 0, zoneSpread), n: 6,
			want: map[string]int{"z1": 3, "z2": 1, "z3": 2}},
		{name: "without spread zone nodes decide", run: execRun(0, 0), n: 6,
			want: map[string]int{"z1": 3, "z2": 1, "z3": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(nodes(tc.nodeOpts...), tc.existing)
			p := place(t, c, "web", tc.run, tc.n, tc.n)
			if got := perZone(p); !maps.Equal(got, tc.want) {
				t.Errorf("placements per zone %v, want %v (nodes %v)", got, tc.want, nodesOf(p))
			}
		})
	}
}

func TestPorts(t *testing.T) {
	t.Run("lowest free, skipping used", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withPorts(20000, 20009))},
			[]*api.Replica{rep("o-1", "other", "a", 1, 1, 20000, 20002, 80)})
		p := place(t, c, "web", execRun(1, 1), 3, 3)
		var got []int
		for _, pl := range p.Placements {
			got = append(got, pl.Ports["http"])
		}
		if want := []int{20001, 20003, 20004}; !slices.Equal(got, want) {
			t.Errorf("ports %v, want %v", got, want)
		}
	})
	t.Run("one per named port", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a")}, nil)
		p := place(t, c, "web", execRun(1, 1, portsNamed("http", "admin", "metrics")), 2, 2)
		want := []map[string]int{
			{"http": 20000, "admin": 20001, "metrics": 20002},
			{"http": 20003, "admin": 20004, "metrics": 20005},
		}
		for i, pl := range p.Placements {
			if !maps.Equal(pl.Ports, want[i]) {
				t.Errorf("replica %d ports %v, want %v", i, pl.Ports, want[i])
			}
		}
	})
	t.Run("repeated port names get one port", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a")}, nil)
		p := place(t, c, "web", execRun(1, 1, portsNamed("http", "http")), 1, 1)
		if want := map[string]int{"http": 20000}; !maps.Equal(p.Placements[0].Ports, want) {
			t.Errorf("ports %v, want %v", p.Placements[0].Ports, want)
		}
		if c.PortUsed("a", 20001) {
			t.Error("port 20001 is used, want only 20000")
		}
	})
	t.Run("exhaustion", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withPorts(20000, 20004))}, nil)
		p := c.Place(Request{Service: "web", Run: execRun(1, 1, portsNamed("http", "admin")), Count: 3})
		if len(p.Placements) != 2 || p.Unplaced != 1 {
			t.Fatalf("placed %d, unplaced %d; want 2 and 1", len(p.Placements), p.Unplaced)
		}
		if want := "no node satisfies: ports 2 > free 1 on 1 node"; p.Reason != want {
			t.Errorf("reason %q, want %q", p.Reason, want)
		}
		// One port is left, for a replica with one port.
		p = place(t, c, "other", execRun(1, 1), 1, 1)
		if got := p.Placements[0].Ports["http"]; got != 20004 {
			t.Errorf("last port %d, want 20004", got)
		}
	})
	t.Run("never a used port across calls and bitset words", func(t *testing.T) {
		existing := []*api.Replica{rep("o-1", "other", "a", 1, 1)}
		for p := 20000; p < 20070; p++ { // crosses the first 64-port word
			existing[0].Ports[string(rune('a'+p%26))+string(rune(p))] = p
		}
		c := NewCluster([]*api.Node{mkNode("a", withCapacity(100000, 100000), withPorts(20000, 20199))}, existing)
		seen := map[int]bool{}
		for p := 20000; p < 20070; p++ {
			seen[p] = true
		}
		for i := range 20 {
			p := place(t, c, "web", execRun(1, 1), 10, 10)
			for _, pl := range p.Placements {
				for _, port := range pl.Ports {
					if seen[port] || port < 20070 || port > 20199 {
						t.Fatalf("call %d: port %d reused or out of range", i, port)
					}
					seen[port] = true
				}
			}
			if len(seen) == 200 {
				break
			}
		}
		if len(seen) != 200 {
			t.Fatalf("%d ports used, want all 200", len(seen))
		}
		if p := c.Place(Request{Service: "web", Run: execRun(1, 1), Count: 1}); p.Unplaced != 1 {
			t.Errorf("placed with every port used: %v", p.Placements)
		}
	})
	t.Run("removed replica frees its ports", func(t *testing.T) {
		o := rep("o-1", "other", "a", 1, 1, 20000, 20001)
		c := NewCluster([]*api.Node{mkNode("a")}, []*api.Replica{o})
		if !c.Remove(o) {
			t.Fatal("Remove = false")
		}
		p := place(t, c, "web", execRun(1, 1, portsNamed("a", "b", "c")), 1, 1)
		if want := map[string]int{"a": 20000, "b": 20001, "c": 20002}; !maps.Equal(p.Placements[0].Ports, want) {
			t.Errorf("ports %v, want %v", p.Placements[0].Ports, want)
		}
	})
}

func TestNeverOvercommit(t *testing.T) {
	t.Run("one at a time", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withCapacity(1000, 1024))}, nil)
		placed := 0
		for range 10 {
			placed += len(c.Place(Request{Service: "web", Run: execRun(300, 100), Count: 1}).Placements)
		}
		if placed != 3 {
			t.Errorf("placed %d replicas of 300 millicores on 1000, want 3", placed)
		}
		if used, _ := c.Used("a"); used.CPU != 900 || used.MemoryMB != 300 {
			t.Errorf("Used = %+v, want 900 millicores and 300 MiB", used)
		}
	})
	t.Run("many services and sizes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		var nodes []*api.Node
		for i := range 20 {
			nodes = append(nodes, mkNode(string(rune('a'+i)), withCapacity(500+rng.IntN(4000), 256+rng.IntN(4096)), withPorts(30000, 30000+rng.IntN(40))))
		}
		c := NewCluster(nodes, nil)
		used := map[string][2]int{}
		for i := range 300 {
			run := execRun(1+rng.IntN(1500), 1+rng.IntN(1500))
			if i%3 == 0 {
				run.Placement = "binpack"
			}
			p := c.Place(Request{Service: string(rune('A' + i%7)), Run: run, Count: 1 + rng.IntN(5)})
			for _, pl := range p.Placements {
				u := used[pl.Node]
				used[pl.Node] = [2]int{u[0] + run.Resources.CPU, u[1] + run.Resources.MemoryMB}
			}
		}
		for _, n := range nodes {
			u := used[n.Name]
			if u[0] > n.Resources.CPU || u[1] > n.Resources.MemoryMB {
				t.Errorf("node %s: placed %d millicores and %d MiB on %d and %d", n.Name, u[0], u[1], n.Resources.CPU, n.Resources.MemoryMB)
			}
			if got, _ := c.Used(n.Name); got.CPU != u[0] || got.MemoryMB != u[1] {
				t.Errorf("node %s: Used = %+v, placements add up to %v", n.Name, got, u)
			}
		}
		if len(used) == 0 {
			t.Fatal("nothing placed")
		}
	})
}

// randomRound builds a cluster of nodes and replicas from seed, in an
// order that depends on shuffle, and runs a fixed series of requests.
func randomRound(seed uint64, shuffle uint64) []Plan {
	rng := rand.New(rand.NewPCG(seed, 0))
	var nodes []*api.Node
	for i := range 200 {
		n := mkNode("node-"+string(rune('a'+i%26))+string(rune('a'+i/26)),
			inZone([]string{"z1", "z2", "z3"}[rng.IntN(3)]),
			withCapacity(1000+rng.IntN(8)*500, 1024+rng.IntN(8)*512),
			withLabels("disk", []string{"ssd", "hdd"}[rng.IntN(2)]))
		if rng.IntN(10) == 0 {
			n.Status = api.NodeDown
		}
		nodes = append(nodes, n)
	}
	var replicas []*api.Replica
	for i := range 300 {
		r := rep("r-"+string(rune(i)), []string{"web", "api", "db"}[rng.IntN(3)], nodes[rng.IntN(len(nodes))].Name, 100, 64, 20000+rng.IntN(10))
		replicas = append(replicas, r)
	}
	srng := rand.New(rand.NewPCG(shuffle, 1))
	srng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	c := NewCluster(nodes, replicas)
	runs := []*api.Run{
		execRun(0, 0), execRun(300, 200, binpack), execRun(100, 64, zoneSpread),
		execRun(200, 128, withDistinct, constraint("disk", api.ConstraintEquals, "ssd")),
		execRun(0, 0, zoneSpread, binpack, portsNamed("http", "grpc")),
	}
	var plans []Plan
	for i, run := range runs {
		plans = append(plans, c.Place(Request{Service: []string{"web", "api", "db", "new"}[i%4], Run: run, Count: 40}))
	}
	return plans
}

func TestDeterministic(t *testing.T) {
	a := randomRound(7, 0)
	if b := randomRound(7, 0); !reflect.DeepEqual(a, b) {
		t.Fatal("two runs of the same round differ")
	}
	if b := randomRound(7, 99); !reflect.DeepEqual(a, b) {
		t.Fatal("the order of the nodes changed the plan")
	}
	placed := 0
	for _, p := range a {
		placed += len(p.Placements)
	}
	if placed < 100 {
		t.Fatalf("only %d placements: the round tests little", placed)
	}
}

func TestReplace(t *testing.T) {
	nodes := []*api.Node{
		mkNode("a", inZone("z1"), func(n *api.Node) { n.Status = api.NodeDown }),
		mkNode("b", inZone("z1"), withCapacity(2000, 2048)),
		mkNode("c", inZone("z2")), mkNode("d", inZone("z2")),
	}
	lost := rep("web-1", "web", "a", 100, 64, 20000)
	lost.State = api.ReplicaLost
	existing := []*api.Replica{lost, rep("web-2", "web", "c", 100, 64, 20000)}
	c := NewCluster(nodes, existing)
	if got := c.Count("web", "a"); got != 1 {
		t.Fatalf("Count(web, a) = %d before, want 1", got)
	}
	p := c.Replace("web", execRun(100, 64, zoneSpread), []*api.Replica{nil, lost})
	if len(p.Placements) != 1 || p.Unplaced != 0 {
		t.Fatalf("placed %v, unplaced %d (%s)", nodesOf(p), p.Unplaced, p.Reason)
	}
	// z1 lost its only replica, so the replacement goes back to z1 even
	// though z2 has the emptier nodes.
	if got := p.Placements[0]; got.Node != "b" || got.Replaces != "web-1" {
		t.Errorf("placement %+v, want on b replacing web-1", got)
	}
	if got := c.Count("web", "a"); got != 0 {
		t.Errorf("Count(web, a) = %d after, want 0", got)
	}

	// A lost replica's node is excluded even when it is ready again.
	nodes[0].Status = api.NodeReady
	c = NewCluster(nodes[:1], []*api.Replica{lost})
	p = c.Replace("web", execRun(100, 64), []*api.Replica{lost})
	if p.Unplaced != 1 || p.Reason != "no node satisfies: excluded on 1 node" {
		t.Errorf("replace on its own node: placed %v, reason %q", nodesOf(p), p.Reason)
	}
}

func TestOddInput(t *testing.T) {
	run := execRun(0, 0)
	t.Run("count zero or less", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a")}, nil)
		for _, n := range []int{0, -1} {
			p := c.Place(Request{Service: "web", Run: run, Count: n})
			if len(p.Placements) != 0 || p.Unplaced != 0 || p.Reason != "" || p.Requested != 0 {
				t.Errorf("Count %d: plan %+v, want empty", n, p)
			}
		}
	})
	t.Run("absurd count", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withPorts(20000, 20009))}, nil)
		p := c.Place(Request{Service: "web", Run: execRun(1, 1), Count: 1 << 50})
		if len(p.Placements) != 10 || p.Unplaced != 1<<50-10 {
			t.Errorf("placed %d, unplaced %d", len(p.Placements), p.Unplaced)
		}
	})
	t.Run("nil run", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a")}, nil)
		p := c.Place(Request{Service: "web", Count: 2})
		if p.Unplaced != 2 || p.Reason != "no run section" {
			t.Errorf("plan %+v", p)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a")}, nil)
		p := place(t, c, "web", &api.Run{Driver: api.DriverExec, Resources: &api.Resources{CPU: -5}}, 1, 1)
		want := api.Resources{CPU: DefaultCPU, MemoryMB: DefaultMemoryMB}
		if p.Placements[0].Resources != want {
			t.Errorf("resources %+v, want %+v", p.Placements[0].Resources, want)
		}
		if !maps.Equal(p.Placements[0].Ports, map[string]int{DefaultPortName: 20000}) {
			t.Errorf("ports %v", p.Placements[0].Ports)
		}
	})
	t.Run("nil, nameless and repeated nodes and replicas", func(t *testing.T) {
		first := mkNode("a", withCapacity(1000, 1000))
		c := NewCluster([]*api.Node{nil, {}, first, mkNode("a", withCapacity(9000, 9000))},
			[]*api.Replica{nil, rep("x-1", "x", "nowhere", 1, 1), rep("x-2", "x", "a", 0, -1, 20000),
				rep("x-2", "x", "a", 500, 500), rep("", "x", "a", 10, 10), rep("", "x", "a", 10, 10)})
		used, ok := c.Used("a")
		// x-2 counted once with the defaults; both replicas without ID count.
		if want := (api.Resources{CPU: 120, MemoryMB: 84}); !ok || used != want {
			t.Errorf("Used(a) = %+v, %v; want %+v", used, ok, want)
		}
		if _, ok := c.Used("nowhere"); ok {
			t.Error("Used(nowhere) found a node")
		}
		p := c.Place(Request{Service: "web", Run: execRun(900, 1), Count: 1})
		if p.Unplaced != 1 {
			t.Errorf("placed %v beyond the first node a's capacity", nodesOf(p))
		}
	})
	t.Run("unknown constraint operator excludes", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withLabels("disk", "ssd"))}, nil)
		p := c.Place(Request{Service: "web", Run: execRun(0, 0, constraint("disk", "like", "ssd")), Count: 1})
		if want := "no node satisfies: constraint disk like [ssd] excludes 1 node"; p.Reason != want {
			t.Errorf("reason %q, want %q", p.Reason, want)
		}
		p = c.Place(Request{Service: "web", Run: execRun(0, 0, constraint("disk", api.ConstraintEquals)), Count: 1})
		if p.Unplaced != 1 {
			t.Error("equals without a value matched")
		}
		place(t, c, "web", execRun(0, 0, constraint("disk", api.ConstraintNot)), 1, 1)
		// A missing label is not an empty one.
		p = c.Place(Request{Service: "web", Run: execRun(0, 0, constraint("gpu", api.ConstraintEquals, "")), Count: 1})
		if p.Unplaced != 1 {
			t.Error("a missing label equals the empty value")
		}
		c = NewCluster([]*api.Node{mkNode("a", withLabels("gpu", ""))}, nil)
		place(t, c, "web", execRun(0, 0, constraint("gpu", api.ConstraintEquals, "")), 1, 1)
	})
	t.Run("empty node", func(t *testing.T) {
		c := NewCluster([]*api.Node{{Name: "bare", Status: api.NodeReady, Eligible: true, Drivers: map[string]string{"exec": ""}}}, nil)
		p := c.Place(Request{Service: "web", Run: run, Count: 1})
		if want := "no node satisfies: cpu 100 millicores > free 0 millicores on 1 node"; p.Reason != want {
			t.Errorf("reason %q, want %q", p.Reason, want)
		}
	})
	t.Run("huge values", func(t *testing.T) {
		c := NewCluster([]*api.Node{mkNode("a", withCapacity(1<<62, 1<<62), withPorts(-5, 1<<40))},
			[]*api.Replica{rep("h-1", "h", "a", 1<<62, 1<<62), rep("h-2", "h", "a", 1<<62, 1<<62)})
		p := c.Place(Request{Service: "web", Run: execRun(1<<62, 1), Count: 1})
		if p.Unplaced != 1 {
			t.Errorf("placed %v on a full node", nodesOf(p))
		}
		p = c.Place(Request{Service: "web", Run: execRun(0, 0), Count: 1})
		if p.Unplaced != 1 {
			t.Errorf("placed %v on a full node", nodesOf(p))
		}
	})
}
