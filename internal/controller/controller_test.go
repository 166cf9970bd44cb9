package controller

import (
	"context"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/state"
)

// TestDrainMovesReplicasUnderTheUpdateGates: a draining node's replicas
// get replacements at most max_parallel unproven at a time, and each old
// one stops only when its replacement has been healthy long enough.
func TestDrainMovesReplicasUnderTheUpdateGates(t *testing.T) {
	l := &storeLeader{store: state.New(), idx: 1}
	st := l.store
	res := api.NodeResources{CPU: 4000, MemoryMB: 4096, PortMin: 20000, PortMax: 20100}
	for _, n := range []string{"n1", "n2"} {
		l.idx++
		if err := st.NodeRegister(l.idx, &api.Node{Name: n, Address: "127.0.0.1", Drivers: map[string]string{"exec": ""}, Resources: res}); err != nil {
			t.Fatal(err)
		}
		l.idx++
		if err := st.MemberUpsert(l.idx, &api.Member{Name: n, Status: api.MemberAlive}); err != nil {
			t.Fatal(err)
		}
	}
	two := 2
	l.idx++
	if err := st.ServiceUpsert(l.idx, &api.Service{Name: "web", Run: &api.Run{Driver: "exec", Command: "/bin/web", Replicas: &two,
		Update: &api.UpdatePolicy{MaxParallel: 1, MinHealthyTime: api.Duration(time.Second), HealthyDeadline: api.Duration(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	_, svc, _ := st.ServiceGet(nil, "web")
	long := time.Now().Add(-time.Hour)
	l.idx++
	if err := st.ReplicaApplyPlan(l.idx, &state.ReplicaPlan{Upsert: []*api.Replica{
		{ID: "web-a", Service: "web", Version: svc.RunVersion, Node: "n1", Address: "127.0.0.1", Ports: map[string]int{"http": 20000},
			Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthHealthy, HealthySince: long, CreateTime: long},
		{ID: "web-b", Service: "web", Version: svc.RunVersion, Node: "n1", Address: "127.0.0.1", Ports: map[string]int{"http": 20001},
			Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthHealthy, HealthySince: long, CreateTime: long},
	}}); err != nil {
		t.Fatal(err)
	}
	drain := true
	l.idx++
	if err := st.NodeSetEligibility(l.idx, "n1", nil, &drain); err != nil {
		t.Fatal(err)
	}
	c := New(Config{}, l)
	ctx := context.Background()
	reconcile := func() []*api.Replica {
		t.Helper()
		if _, err := c.Reconcile(ctx, nil); err != nil {
			t.Fatal(err)
		}
		_, rs, _ := st.Replicas(nil, "web", "")
		return rs
	}
	count := func(rs []*api.Replica, f func(*api.Replica) bool) int {
		n := 0
		for _, r := range rs {
			if f(r) {
				n++
			}
		}
		return n
	}
	rs := reconcile()
	rs = reconcile() // a second pass on the same state changes nothing
	if got := count(rs, func(r *api.Replica) bool { return r.Replaces != "" }); got != 1 || len(rs) != 3 {
		t.Fatalf("after the first passes: %d replacements of %d replicas, want 1 of 3: %+v", got, len(rs), rs)
	}
	if got := count(rs, func(r *api.Replica) bool { return r.Desired == api.DesiredStop }); got != 0 {
		t.Fatalf("an old replica stopped before its replacement was healthy")
	}
	var repl *api.Replica
	for _, r := range rs {
		if r.Replaces != "" {
			repl = r
		}
	}
	if repl.Node != "n2" {
		t.Fatalf("replacement placed on %q, want n2", repl.Node)
	}
	// The replacement proves itself: its predecessor stops and the next
	// replacement starts.
	l.idx++
	if err := st.ReplicaReport(l.idx, "n2", []api.ReplicaStatus{{ID: repl.ID, State: api.ReplicaRunning, Health: api.HealthHealthy,
		StartedAt: long, HealthySince: long}}); err != nil {
		t.Fatal(err)
	}
	rs = reconcile()
	if got := count(rs, func(r *api.Replica) bool { return r.ID == repl.Replaces && r.Desired == api.DesiredStop }); got != 1 {
		t.Fatalf("the replaced replica was not stopped: %+v", rs)
	}
	if got := count(rs, func(r *api.Replica) bool { return r.Replaces != "" }); got != 2 {
		t.Fatalf("the second replacement did not start: %+v", rs)
	}
}

// TestRolloutMakesRoomWithDistinctHosts: with distinct_hosts and as many
// replicas as nodes, a new version has nowhere to start beside the old
// one; the rollout stops one old replica at a time (max_parallel) to make
// room, places the new one on the freed node, and completes.
func TestRolloutMakesRoomWithDistinctHosts(t *testing.T) {
	l := &storeLeader{store: state.New(), idx: 1}
	st := l.store
	res := api.NodeResources{CPU: 4000, MemoryMB: 4096, PortMin: 20000, PortMax: 20100}
	for _, n := range []string{"n1", "n2"} {
		l.idx++
		if err := st.NodeRegister(l.idx, &api.Node{Name: n, Address: "127.0.0.1", Drivers: map[string]string{"exec": ""}, Resources: res}); err != nil {
			t.Fatal(err)
		}
		l.idx++
		if err := st.MemberUpsert(l.idx, &api.Member{Name: n, Status: api.MemberAlive}); err != nil {
			t.Fatal(err)
		}
	}
	two := 2
	svcAt := func(version string) *api.Service {
		return &api.Service{Name: "web", Run: &api.Run{Driver: "exec", Command: "/bin/web", Env: map[string]string{"V": version},
			Replicas: &two, DistinctHosts: true,
			Update: &api.UpdatePolicy{MaxParallel: 1, MinHealthyTime: api.Duration(time.Second), HealthyDeadline: api.Duration(time.Minute)}}}
	}
	l.idx++
	if err := st.ServiceUpsert(l.idx, svcAt("1")); err != nil {
		t.Fatal(err)
	}
	c := New(Config{}, l)
	ctx := context.Background()
	long := time.Now().Add(-time.Hour)
	reconcile := func() []*api.Replica {
		t.Helper()
		for range 2 { // a second pass on the same state changes nothing new
			if _, err := c.Reconcile(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		_, rs, _ := st.Replicas(nil, "web", "")
		return rs
	}
	// report says what the nodes see: wanted replicas run healthy, the
	// others have stopped.
	report := func(rs []*api.Replica) {
		t.Helper()
		by := map[string][]api.ReplicaStatus{}
		for _, r := range rs {
			if r.Node == "" {
				continue
			}
			s := api.ReplicaStatus{ID: r.ID, State: api.ReplicaRunning, Health: api.HealthHealthy, StartedAt: long, HealthySince: long}
			if r.Desired == api.DesiredStop {
				s = api.ReplicaStatus{ID: r.ID, State: api.ReplicaStopped}
			}
			by[r.Node] = append(by[r.Node], s)
		}
		for n, sts := range by {
			l.idx++
			if err := st.ReplicaReport(l.idx, n, sts); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs := reconcile()
	report(rs)
	if rs = reconcile(); len(rs) != 2 || rs[0].Node == rs[1].Node {
		t.Fatalf("version 1 not on two distinct nodes: %+v", rs)
	}
	l.idx++
	if err := st.ServiceUpsert(l.idx, svcAt("2")); err != nil {
		t.Fatal(err)
	}
	_, svc, _ := st.ServiceGet(nil, "web")
	for step := 0; step < 20; step++ {
		rs = reconcile()
		running, stopping := 0, 0
		for _, r := range rs {
			switch {
			case r.Desired == api.DesiredStop:
				stopping++
			case r.Node != "" && r.State == api.ReplicaRunning && r.Health == api.HealthHealthy:
				running++
			}
		}
		// max_parallel 1: at most one of the two is ever unavailable.
		if running < 1 {
			t.Fatalf("step %d: no replica serves: %+v", step, rs)
		}
		_, svc, _ = st.ServiceGet(nil, "web")
		if svc.Rollout != nil && svc.Rollout.State == api.RolloutComplete {
			break
		}
		report(rs)
	}
	if svc.Rollout == nil || svc.Rollout.State != api.RolloutComplete {
		t.Fatalf("the rollout did not complete: %+v; replicas %+v", svc.Rollout, rs)
	}
	nodes := map[string]bool{}
	for _, r := range rs {
		if r.Desired == api.DesiredRun {
			if r.Version != svc.RunVersion {
				t.Errorf("replica %s still runs version %d", r.ID, r.Version)
			}
			nodes[r.Node] = true
		}
	}
	if len(nodes) != 2 {
		t.Errorf("the new version is not on two distinct nodes: %+v", rs)
	}
}
