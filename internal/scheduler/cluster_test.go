package scheduler

import (
	"slices"
	"testing"

	"github.com/herd-cluster/herd/api"
)

func TestHoldsResources(t *testing.T) {
	tests := []struct {
		name    string
		node    string
		desired string
		state   string
		want    bool
	}{
		{name: "run, running", node: "a", desired: api.DesiredRun, state: api.ReplicaRunning, want: true},
		{name: "run, pending", node: "a", desired: api.DesiredRun, state: api.ReplicaPending, want: true},
		{name: "run, failed", node: "a", desired: api.DesiredRun, state: api.ReplicaFailed, want: true},
		{name: "run, lost", node: "a", desired: api.DesiredRun, state: api.ReplicaLost, want: true},
		{name: "run, no node", node: "", desired: api.DesiredRun, state: api.ReplicaPending, want: false},
		{name: "stop, running", node: "a", desired: api.DesiredStop, state: api.ReplicaRunning, want: true},
		{name: "stop, starting", node: "a", desired: api.DesiredStop, state: api.ReplicaStarting, want: true},
		{name: "stop, backoff", node: "a", desired: api.DesiredStop, state: api.ReplicaBackoff, want: true},
		{name: "stop, stopped", node: "a", desired: api.DesiredStop, state: api.ReplicaStopped, want: false},
		{name: "stop, failed", node: "a", desired: api.DesiredStop, state: api.ReplicaFailed, want: false},
		{name: "stop, lost", node: "a", desired: api.DesiredStop, state: api.ReplicaLost, want: false},
		{name: "unknown desired", node: "a", desired: "pause", state: api.ReplicaStopped, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &api.Replica{ID: "x", Node: tc.node, Desired: tc.desired, State: tc.state}
			if got := HoldsResources(r); got != tc.want {
				t.Errorf("HoldsResources = %v, want %v", got, tc.want)
			}
		})
	}
	if HoldsResources(nil) {
		t.Error("HoldsResources(nil) = true")
	}
}

func TestNewClusterAccountsOnlyHolders(t *testing.T) {
	stopped := rep("s-1", "web", "a", 1000, 1000, 20000)
	stopped.Desired, stopped.State = api.DesiredStop, api.ReplicaStopped
	stopping := rep("s-2", "web", "a", 200, 100, 20001)
	stopping.Desired = api.DesiredStop
	c := NewCluster([]*api.Node{mkNode("a")}, []*api.Replica{stopped, stopping, rep("w-1", "web", "a", 30, 20, 20002)})
	if used, _ := c.Used("a"); used != (api.Resources{CPU: 230, MemoryMB: 120}) {
		t.Errorf("Used = %+v, want the stopping and running replicas only", used)
	}
	if c.PortUsed("a", 20000) || !c.PortUsed("a", 20001) || !c.PortUsed("a", 20002) {
		t.Error("ports: want 20001 and 20002 used, 20000 free")
	}
	if got := c.Count("web", "a"); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
}

func TestAddRemove(t *testing.T) {
	c := NewCluster([]*api.Node{mkNode("a", inZone("z1")), mkNode("b", inZone("z2"))}, nil)
	r := rep("w-1", "web", "a", 300, 200, 20005, 20005, 19999)
	if !c.Add(r) {
		t.Fatal("Add = false")
	}
	if c.Add(r) {
		t.Error("Add of an accounted ID = true")
	}
	if c.Add(rep("w-2", "web", "nowhere", 1, 1)) || c.Add(nil) {
		t.Error("Add of a replica on an unknown node, or nil, = true")
	}
	if used, _ := c.Used("a"); used != (api.Resources{CPU: 300, MemoryMB: 200}) {
		t.Errorf("Used = %+v", used)
	}
	if !c.PortUsed("a", 20005) || c.PortUsed("a", 19999) {
		t.Error("want 20005 used and 19999 (outside the range) not")
	}
	if c.Count("web", "a") != 1 || c.Count("web", "b") != 0 || c.Count("nope", "a") != 0 {
		t.Error("counts wrong after Add")
	}
	// Remove uses what was accounted, not the replica's current fields.
	r.Resources.CPU = 1
	r.Ports = nil
	if !c.Remove(r) {
		t.Fatal("Remove = false")
	}
	if c.Remove(r) || c.Remove(nil) {
		t.Error("second Remove, or Remove(nil), = true")
	}
	if used, _ := c.Used("a"); used != (api.Resources{}) {
		t.Errorf("Used after Remove = %+v, want zero", used)
	}
	// The port was claimed twice by one replica; both claims are gone.
	if c.PortUsed("a", 20005) || c.Count("web", "a") != 0 {
		t.Error("port or count left after Remove")
	}
	// Zone counts went back too: spread zone sees z1 and z2 equal, and z1
	// sorts first.
	p := place(t, c, "web", execRun(0, 0, zoneSpread), 1, 1)
	if p.Placements[0].Node != "a" {
		t.Errorf("placed on %s, want a", p.Placements[0].Node)
	}
}

func TestReplicaResourcesAndPortNames(t *testing.T) {
	tests := []struct {
		name      string
		run       *api.Run
		wantRes   api.Resources
		wantPorts []string
	}{
		{name: "nil run", run: nil, wantRes: api.Resources{CPU: 100, MemoryMB: 64}, wantPorts: []string{"http"}},
		{name: "no resources", run: &api.Run{}, wantRes: api.Resources{CPU: 100, MemoryMB: 64}, wantPorts: []string{"http"}},
		{name: "cpu only", run: &api.Run{Resources: &api.Resources{CPU: 250}}, wantRes: api.Resources{CPU: 250, MemoryMB: 64}, wantPorts: []string{"http"}},
		{name: "both, ports", run: &api.Run{Resources: &api.Resources{CPU: 1, MemoryMB: 2},
			Ports: []api.Port{{Name: "grpc"}, {Name: "admin"}, {Name: "grpc"}}},
			wantRes: api.Resources{CPU: 1, MemoryMB: 2}, wantPorts: []string{"grpc", "admin"}},
		{name: "negative", run: &api.Run{Resources: &api.Resources{CPU: -1, MemoryMB: -1}}, wantRes: api.Resources{CPU: 100, MemoryMB: 64}, wantPorts: []string{"http"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplicaResources(tc.run); got != tc.wantRes {
				t.Errorf("ReplicaResources = %+v, want %+v", got, tc.wantRes)
			}
			if got := PortNames(tc.run); !slices.Equal(got, tc.wantPorts) {
				t.Errorf("PortNames = %v, want %v", got, tc.wantPorts)
			}
		})
	}
}

func TestPortSet(t *testing.T) {
	var p portSet
	p.init(100, 299, nil)
	if p.free() != 200 {
		t.Fatalf("free = %d, want 200", p.free())
	}
	for port := 100; port < 230; port++ {
		if port != 150 && port != 170 {
			p.claim(port)
		}
	}
	var got []int
	for range 4 {
		port, ok := p.alloc()
		if !ok {
			t.Fatal("alloc failed")
		}
		got = append(got, port)
	}
	if want := []int{150, 170, 230, 231}; !slices.Equal(got, want) {
		t.Errorf("alloc = %v, want %v", got, want)
	}
	p.release(120)
	p.release(120) // not used any more: ignored
	p.release(5000)
	if port, _ := p.alloc(); port != 120 {
		t.Errorf("alloc after release = %d, want 120", port)
	}
	// A doubly claimed port stays used until released twice.
	p.claim(232)
	p.claim(232)
	p.release(232)
	if !p.isUsed(232) {
		t.Error("232 free after one of two releases")
	}
	p.release(232)
	if p.isUsed(232) {
		t.Error("232 still used after both releases")
	}
	for p.free() > 0 {
		if _, ok := p.alloc(); !ok {
			t.Fatalf("alloc failed with %d free", p.free())
		}
	}
	if port, ok := p.alloc(); ok {
		t.Errorf("alloc on a full set = %d", port)
	}
	for port := 100; port <= 299; port++ {
		if !p.isUsed(port) {
			t.Fatalf("port %d free in a full set", port)
		}
	}
	if p.isUsed(99) || p.isUsed(300) {
		t.Error("ports outside the range reported used")
	}

	var empty portSet
	empty.init(10, 5, nil)
	if _, ok := empty.alloc(); ok || empty.free() != 0 {
		t.Error("an inverted range has ports")
	}
	var clipped portSet
	clipped.init(-100, 1<<20, nil)
	if clipped.free() != 65535 {
		t.Errorf("clipped range has %d ports, want 65535", clipped.free())
	}
	if port, _ := clipped.alloc(); port != 1 {
		t.Errorf("first port of the clipped range = %d, want 1", port)
	}
}
