package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

func TestNodesStatusEligibilityAndUsage(t *testing.T) {
	s := New()
	for i, name := range []string{"a", "b", "c"} {
		n := &api.Node{Name: name, Address: "127.0.0.1", Resources: api.NodeResources{CPU: 2000, MemoryMB: 1024, PortMin: 20000, PortMax: 20100}}
		if err := s.NodeRegister(uint64(10+i), n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MemberUpsert(20, &api.Member{Name: "a", Status: api.MemberAlive}); err != nil {
		t.Fatal(err)
	}
	if err := s.MemberUpsert(21, &api.Member{Name: "b", Status: api.MemberFailed}); err != nil {
		t.Fatal(err)
	}
	f := false
	if err := s.NodeSetEligibility(22, "a", &f, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.NodeSetEligibility(23, "nope", &f, nil); err == nil {
		t.Fatal("eligibility of an unknown node succeeded")
	}
	// Re-registering keeps the operator's flag.
	if err := s.NodeRegister(24, &api.Node{Name: "a", Address: "127.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	plan := &ReplicaPlan{Upsert: []*api.Replica{
		{ID: "web-1", Service: "web", Node: "c", Desired: api.DesiredRun, State: api.ReplicaPending, Resources: api.Resources{CPU: 100, MemoryMB: 64}},
		{ID: "web-2", Service: "web", Node: "c", Desired: api.DesiredRun, State: api.ReplicaRunning, Resources: api.Resources{CPU: 250, MemoryMB: 128}},
		{ID: "web-3", Service: "web", Node: "c", Desired: api.DesiredStop, State: api.ReplicaStopped, Resources: api.Resources{CPU: 999, MemoryMB: 999}},
		{ID: "web-4", Service: "web", Node: "b", Desired: api.DesiredRun, State: api.ReplicaLost, Resources: api.Resources{CPU: 999, MemoryMB: 999}},
	}}
	if err := s.ReplicaApplyPlan(25, plan); err != nil {
		t.Fatal(err)
	}
	idx, nodes, err := s.Nodes(nil)
	if err != nil || idx != 25 || len(nodes) != 3 {
		t.Fatalf("nodes = %d %v %v", idx, nodes, err)
	}
	want := map[string]struct {
		status   string
		eligible bool
		used     api.Resources
	}{
		"a": {api.NodeReady, false, api.Resources{}},
		"b": {api.NodeDown, true, api.Resources{CPU: 999, MemoryMB: 999}}, // a lost replica may still run there
		"c": {api.NodeUnknown, true, api.Resources{CPU: 350, MemoryMB: 192}},
	}
	for _, n := range nodes {
		w := want[n.Name]
		if n.Status != w.status || n.Eligible != w.eligible || n.Used != w.used {
			t.Errorf("node %s: status %s eligible %v used %+v; want %+v", n.Name, n.Status, n.Eligible, n.Used, w)
		}
	}
	if nodes[0].Address != "127.0.0.2" {
		t.Errorf("re-register did not update the address: %q", nodes[0].Address)
	}
}

func TestReplicaReportAndPlan(t *testing.T) {
	s := New()
	if err := s.ReplicaApplyPlan(5, &ReplicaPlan{Upsert: []*api.Replica{
		{ID: "w-1", Service: "w", Node: "n1", Desired: api.DesiredRun, State: api.ReplicaPending},
		{ID: "w-2", Service: "w", Node: "n2", Desired: api.DesiredRun, State: api.ReplicaLost},
		{ID: "x-1", Service: "x", Node: "n1", Desired: api.DesiredRun, State: api.ReplicaPending},
	}}); err != nil {
		t.Fatal(err)
	}
	ws := memdb.NewWatchSet()
	if _, rs, err := s.Replicas(ws, "w", ""); err != nil || len(rs) != 2 {
		t.Fatalf("replicas of w = %v %v", rs, err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := s.ReplicaReport(6, "n1", []api.ReplicaStatus{
		{ID: "w-1", State: api.ReplicaRunning, Health: api.HealthHealthy, StartedAt: now, HealthySince: now, Restarts: 2},
		{ID: "w-2", State: api.ReplicaRunning, Health: api.HealthHealthy}, // not on n1: ignored
		{ID: "gone", State: api.ReplicaRunning},                           // unknown: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	assertFires(t, ws, "report")
	_, rs, _ := s.Replicas(nil, "", "n1")
	if len(rs) != 2 || rs[0].ID != "w-1" || rs[0].State != api.ReplicaRunning || rs[0].Health != api.HealthHealthy ||
		rs[0].Restarts != 2 || !rs[0].HealthySince.Equal(now) || rs[0].ModifyIndex != 6 || rs[0].CreateIndex != 5 {
		t.Fatalf("after report: %+v", rs)
	}
	// A lost replica's state stays lost even when its returning node says
	// it runs; its health is recorded.
	if err := s.ReplicaReport(7, "n2", []api.ReplicaStatus{{ID: "w-2", State: api.ReplicaRunning, Health: api.HealthHealthy}}); err != nil {
		t.Fatal(err)
	}
	_, rs, _ = s.Replicas(nil, "", "n2")
	if rs[0].State != api.ReplicaLost || rs[0].Health != api.HealthHealthy {
		t.Fatalf("lost replica after report: %+v", rs[0])
	}
	// A report that changes nothing known does not move the index.
	if err := s.ReplicaReport(8, "n3", []api.ReplicaStatus{{ID: "w-1", State: api.ReplicaStopped}}); err != nil {
		t.Fatal(err)
	}
	if idx, _, _ := s.Replicas(nil, "", ""); idx != 7 {
		t.Fatalf("index after an ignored report = %d, want 7", idx)
	}
	if err := s.ReplicaApplyPlan(9, &ReplicaPlan{Delete: []string{"w-2", "missing"}}); err != nil {
		t.Fatal(err)
	}
	if _, rs, _ := s.Replicas(nil, "w", ""); len(rs) != 1 {
		t.Fatalf("after delete: %+v", rs)
	}
	if err := s.ReplicaApplyPlan(10, &ReplicaPlan{Upsert: []*api.Replica{{Service: "w"}}}); err == nil {
		t.Fatal("a replica without an ID was accepted")
	}

	// Nodes and replicas survive a snapshot.
	if err := s.NodeRegister(11, &api.Node{Name: "n1", Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if _, rs, _ := r.Replicas(nil, "", ""); len(rs) != 2 {
		t.Fatalf("restored replicas: %+v", rs)
	}
	if _, ns, _ := r.Nodes(nil); len(ns) != 1 || ns[0].Address != "127.0.0.1" {
		t.Fatalf("restored nodes: %+v", ns)
	}
}

func TestServiceRunVersionAndRollout(t *testing.T) {
	s := New()
	svc := &api.Service{Name: "w", Run: &api.Run{Driver: "exec", Command: "/bin/w"}}
	if err := s.ServiceUpsert(5, svc); err != nil {
		t.Fatal(err)
	}
	_, e, _ := s.ServiceGet(nil, "w")
	if e.RunVersion != 5 || e.Rollout == nil || e.Rollout.State != api.RolloutProgress || e.Rollout.StableRun != nil {
		t.Fatalf("new service: %+v %+v", e, e.Rollout)
	}
	if err := s.ServiceSetRollout(6, "w", 5, api.RolloutComplete, ""); err != nil {
		t.Fatal(err)
	}
	// Scaling is not a new version.
	n := 4
	scaled := *svc
	scaled.Run = &api.Run{Driver: "exec", Command: "/bin/w", Replicas: &n}
	if err := s.ServiceUpsert(7, &scaled); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "w")
	if e.RunVersion != 5 || e.Rollout.State != api.RolloutComplete || e.Rollout.StableVersion != 5 {
		t.Fatalf("scaled: %+v %+v", e, e.Rollout)
	}
	// A new command is; the completed version is kept to revert to.
	changed := scaled
	changed.Run = &api.Run{Driver: "exec", Command: "/bin/w2", Replicas: &n}
	if err := s.ServiceUpsert(8, &changed); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "w")
	if e.RunVersion != 8 || e.Rollout.State != api.RolloutProgress || e.Rollout.StableVersion != 5 || e.Rollout.StableRun.Command != "/bin/w" {
		t.Fatalf("changed: %+v %+v", e, e.Rollout)
	}
	// A stale rollout report (old version) changes nothing.
	if err := s.ServiceSetRollout(9, "w", 5, api.RolloutFailed, "x"); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "w")
	if e.Rollout.State != api.RolloutProgress {
		t.Fatalf("stale report applied: %+v", e.Rollout)
	}
	// Reverting goes back to the completed run section and its version
	// number, keeping the count.
	if err := s.ServiceSetRollout(10, "w", 8, api.RolloutReverted, "replica w-1 not healthy"); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "w")
	if e.RunVersion != 5 || e.Run.Command != "/bin/w" || *e.Run.Replicas != 4 || e.Rollout.RevertedFrom != 8 ||
		e.Rollout.State != api.RolloutProgress || e.Rollout.Version != 5 || e.Rollout.StableVersion != 5 || e.ModifyIndex != 10 {
		t.Fatalf("reverted: %+v %+v", e, e.Rollout)
	}
	// Without a completed version there is nothing to revert to: failed.
	fresh := &api.Service{Name: "x", Run: &api.Run{Driver: "exec", Command: "/bin/x"}}
	if err := s.ServiceUpsert(11, fresh); err != nil {
		t.Fatal(err)
	}
	if err := s.ServiceSetRollout(12, "x", 11, api.RolloutReverted, "bad"); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "x")
	if e.RunVersion != 11 || e.Rollout.State != api.RolloutFailed {
		t.Fatalf("revert without a stable version: %+v", e.Rollout)
	}
}
