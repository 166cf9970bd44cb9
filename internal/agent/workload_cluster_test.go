package agent_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// spreadService is webService with one replica per node.
func spreadService(bin, version string, replicas int) *api.Service {
	s := webService(bin, version, replicas)
	s.Run.DistinctHosts = true
	return s
}

// awayFromLeader picks a replica that does not run on the leader's node,
// and its node.
func awayFromLeader(t *testing.T, c *testcluster.Cluster, rs []*api.Replica, leader *testcluster.Node) (*testcluster.Node, *api.Replica) {
	t.Helper()
	for _, r := range rs {
		if r.Node != leader.Name {
			return c.Node(r.Node), r
		}
	}
	t.Fatal("every replica runs on the leader's node")
	return nil, nil
}

func listening(r *api.Replica) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", r.Address, r.Ports["http"]), 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// TestNodeLossReplacesItsReplicas kills a node with its replicas; after the
// grace its replica is replaced on the node that had none, and the
// gateway of another node routes to the replacement.
func TestNodeLossReplacesItsReplicas(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
	}})
	leader := c.Leader()
	cl := leader.Client(t)
	ctx := testcluster.Ctx(t, time.Minute)
	if _, err := cl.ServicePut(ctx, spreadService(bin, "v1", 3)); err != nil {
		t.Fatal(err)
	}
	rs := waitHealthy(t, cl, "web", 3, "v1")

	// Kill a node that runs a replica and is not the leader.
	victim, lost := awayFromLeader(t, c, rs, leader)
	killed := time.Now()
	c.Kill(victim)
	var repl *api.Replica
	testcluster.WaitFor(t, 20*time.Second, "a healthy replacement on another node", func() bool {
		for _, r := range replicasOf(t, cl, "web") {
			if r.Replaces == lost.ID && r.State == api.ReplicaRunning && r.Health == api.HealthHealthy {
				repl = r
				return true
			}
		}
		return false
	})
	t.Logf("replacement %s on %s healthy %s after the kill", repl.ID, repl.Node, time.Since(killed).Round(10*time.Millisecond))
	if repl.Node == victim.Name {
		t.Fatalf("replacement placed on the dead node: %+v", repl)
	}
	if listening(lost) {
		t.Errorf("the killed node's replica still listens")
	}
	// The lost replica is forgotten once replaced (its node is down).
	testcluster.WaitFor(t, 10*time.Second, "the lost replica to be collected", func() bool {
		all, _, err := cl.Replicas(ctx, "web", "", nil)
		if err != nil {
			return false
		}
		for _, r := range all {
			if r.ID == lost.ID {
				return false
			}
		}
		return len(all) == 3
	})
}

// TestReturningNodeKeepsNoStaleReplica: a node is cut off while its
// replica keeps running (the agent dies, the process does not). The
// cluster replaces the replica; when the agent comes back it re-attaches
// to the still-running process and stops it only once the replacement is
// healthy, leaving no duplicate.
func TestReturningNodeKeepsNoStaleReplica(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.Leader()
	cl := leader.Client(t)
	ctx := testcluster.Ctx(t, time.Minute)
	if _, err := cl.ServicePut(ctx, spreadService(bin, "v1", 3)); err != nil {
		t.Fatal(err)
	}
	rs := waitHealthy(t, cl, "web", 3, "v1")
	victim, stale := awayFromLeader(t, c, rs, leader)
	c.Crash(victim)
	if !listening(stale) {
		t.Fatal("the replica died with its agent; it should outlive it")
	}
	testcluster.WaitFor(t, 20*time.Second, "a healthy replacement", func() bool {
		for _, r := range replicasOf(t, cl, "web") {
			if r.Replaces == stale.ID && r.Health == api.HealthHealthy {
				return true
			}
		}
		return false
	})
	if !listening(stale) {
		t.Fatal("the stale replica stopped before its agent came back")
	}
	c.Restart(victim)
	testcluster.WaitFor(t, 20*time.Second, "the returning node to stop its stale replica", func() bool {
		return !listening(stale)
	})
	testcluster.WaitFor(t, 10*time.Second, "exactly 3 replicas, none stale", func() bool {
		all, _, err := cl.Replicas(ctx, "web", "", nil)
		if err != nil || len(all) != 3 {
			return false
		}
		for _, r := range all {
			if r.ID == stale.ID || r.Desired != api.DesiredRun || r.Health != api.HealthHealthy {
				return false
			}
		}
		return true
	})
}

// TestAgentRestartReattaches: an agent that restarts within the grace
// finds its replica still running and keeps it: same replica, no restart,
// no second process.
func TestAgentRestartReattaches(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Workload.NodeGrace = config.Duration(time.Minute)
	}})
	n := c.Nodes[0]
	ctx := testcluster.Ctx(t, time.Minute)
	cl := n.Client(t)
	if _, err := cl.ServicePut(ctx, webService(bin, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	before := waitHealthy(t, cl, "web", 1, "v1")[0]
	c.Crash(n)
	if !listening(before) {
		t.Fatal("the replica died with its agent")
	}
	c.Restart(n)
	c.WaitLeader(15 * time.Second)
	cl = n.Client(t)
	// The supervisor reports the re-attached replica again.
	testcluster.WaitFor(t, 15*time.Second, "the re-attached replica to be reported", func() bool {
		rs, _, err := cl.Replicas(context.Background(), "web", "", nil)
		if testing.Verbose() && err == nil && len(rs) == 1 {
			t.Logf("%+v", *rs[0])
		}
		return err == nil && len(rs) == 1 && rs[0].State == api.ReplicaRunning && rs[0].Health == api.HealthHealthy &&
			rs[0].ModifyIndex > before.ModifyIndex
	})
	after := replicasOf(t, cl, "web")
	if len(after) != 1 || after[0].ID != before.ID || after[0].Restarts != 0 {
		t.Fatalf("after the restart: %+v (want the same replica, not restarted)", after)
	}
	if !listening(before) {
		t.Fatal("the re-attached replica is not listening")
	}
}

// TestNodeDrainMovesReplicas: draining a node starts a replacement
// elsewhere for each of its replicas and stops the old one only once the
// replacement is healthy; the node takes no new replicas until the drain
// ends.
func TestNodeDrainMovesReplicas(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1})
	cl := c.Leader().Client(t)
	ctx := testcluster.Ctx(t, time.Minute)
	if _, err := cl.ServicePut(ctx, spreadService(bin, "v1", 3)); err != nil {
		t.Fatal(err)
	}
	rs := waitHealthy(t, cl, "web", 3, "v1")
	old := rs[0]
	if err := cl.NodeDrain(ctx, old.Node, true); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "the replicas to leave the drained node", func() bool {
		all, _, err := cl.Replicas(ctx, "web", "", nil)
		if err != nil || len(all) != 3 {
			return false
		}
		for _, r := range all {
			if r.Node == old.Node || r.Health != api.HealthHealthy {
				return false
			}
		}
		return true
	})
	if listening(old) {
		t.Errorf("the drained replica still listens")
	}
	n, err := cl.Node(ctx, old.Node)
	if err != nil || n == nil || !n.Drain || n.Eligible {
		t.Fatalf("drained node: %+v %v", n, err)
	}
	// Ending the drain makes it eligible again; nothing moves back by itself.
	if err := cl.NodeDrain(ctx, old.Node, false); err != nil {
		t.Fatal(err)
	}
	if n, err := cl.Node(ctx, old.Node); err != nil || n.Drain || !n.Eligible {
		t.Fatalf("after the drain: %+v %v", n, err)
	}
	if err := cl.NodeDrain(ctx, "nope", true); err == nil {
		t.Fatal("draining an unknown node succeeded")
	}
}
