package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// TestLeaderKillLosesNoAcknowledgedWrite writes 1,000 keys through every
// server while the leader is killed in the middle, then checks that every
// acknowledged key is on every server, including the restarted one.
func TestLeaderKillLosesNoAcknowledgedWrite(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, 2*time.Minute)
	const total = 1000

	var (
		mu    sync.Mutex
		acked = map[string]string{}
	)
	clients := map[string]*api.Client{}
	for _, n := range c.Nodes {
		clients[n.Name] = n.Client(t)
	}
	var killed *testcluster.Node
	killedAt := time.Time{}
	failures := 0
	for i := range total {
		if i == total/3 {
			killed = c.Leader()
			c.Kill(killed)
			killedAt = time.Now()
		}
		key, val := fmt.Sprintf("ack/%04d", i), fmt.Sprintf("v%d", i)
		// Round-robin over the live servers, as a client library would.
		live := c.Running()
		n := live[i%len(live)]
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ok, _, err := clients[n.Name].KVPut(pctx, key, []byte(val), nil)
		cancel()
		if err != nil || !ok {
			failures++ // not acknowledged: may or may not be stored
			continue
		}
		mu.Lock()
		acked[key] = val
		mu.Unlock()
	}
	newLeader := c.WaitLeader(10 * time.Second)
	t.Logf("leader %s killed; new leader %s; %d of %d writes acknowledged, %d failed (failover began %s ago)",
		killed.Name, newLeader.Name, len(acked), total, failures, time.Since(killedAt).Round(time.Millisecond))
	if len(acked) < total-100 {
		t.Fatalf("only %d of %d writes acknowledged: failover took too long", len(acked), total)
	}

	c.Restart(killed)
	verifyAll(t, c, acked)
}

// verifyAll waits until every running server has applied the leader's
// index, then reads every key from its local store.
func verifyAll(t *testing.T, c *testcluster.Cluster, want map[string]string) {
	t.Helper()
	leader := c.WaitLeader(15 * time.Second)
	target := leader.Agent().Server().Store().LatestIndex()
	for _, n := range c.Running() {
		store := n.Agent().Server().Store()
		c.WaitFor(20*time.Second, n.Name+" to catch up", func() bool { return store.LatestIndex() >= target })
		missing := 0
		for k, v := range want {
			_, e, err := store.KVGet(nil, k)
			if err != nil || e == nil || string(e.Value) != v {
				missing++
				if missing < 5 {
					t.Errorf("%s: acknowledged key %s = %q is missing or wrong (%+v, %v)", n.Name, k, v, e, err)
				}
			}
		}
		if missing > 0 {
			t.Fatalf("%s lost %d acknowledged writes", n.Name, missing)
		}
	}
}

func TestRestartedServerCatchesUpFromSnapshotAndLog(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Configure: func(i int, cfg *config.Config) {
		cfg.Raft.SnapshotThreshold = 50
		cfg.Raft.TrailingLogs = 10
	}})
	ctx := testcluster.Ctx(t, time.Minute)
	leader := c.Leader()
	cl := leader.Client(t)
	want := map[string]string{}
	put := func(from, to int) {
		for i := from; i < to; i++ {
			k, v := fmt.Sprintf("snap/%03d", i), fmt.Sprint(i)
			if ok, _, err := cl.KVPut(ctx, k, []byte(v), nil); err != nil || !ok {
				t.Fatalf("put %s: %v", k, err)
			}
			want[k] = v
		}
	}
	put(0, 100)
	var follower *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			follower = n
			break
		}
	}
	c.Kill(follower)
	put(100, 300)
	// Compact the leader's log so the follower must install a snapshot.
	if err := leader.Agent().Server().Snapshot(); err != nil {
		t.Fatal(err)
	}
	put(300, 320)
	c.Restart(follower)
	verifyAll(t, c, want)

	// The snapshot on disk restores on its own: restart the leader too.
	for _, n := range c.Nodes {
		if err := n.Agent().Server().Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.Name, err)
		}
	}
	c.Kill(leader)
	c.Restart(leader)
	verifyAll(t, c, want)
}

func TestDeadServerIsRemovedFromPeers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Configure: func(i int, cfg *config.Config) {
		cfg.DeadServerCleanup = config.Duration(time.Second)
	}})
	ctx := testcluster.Ctx(t, time.Minute)
	leader := c.Leader()
	var victim *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			victim = n
		}
	}
	c.Kill(victim)
	start := time.Now()
	cl := leader.Client(t)
	c.WaitFor(15*time.Second, victim.Name+" removed from the raft configuration", func() bool {
		cfg, err := cl.RaftConfiguration(ctx)
		if err != nil {
			return false
		}
		for _, s := range cfg.Servers {
			if s.Node == victim.Name {
				return false
			}
		}
		return len(cfg.Servers) == 2
	})
	if took := time.Since(start); took < time.Second {
		t.Fatalf("removed after %s, before the 1s cleanup time", took)
	}
	// The two left still commit writes.
	if ok, _, err := cl.KVPut(ctx, "after/removal", []byte("x"), nil); err != nil || !ok {
		t.Fatalf("write after removal: %v", err)
	}
	// The leader recorded the member as failed in the replicated state.
	m, err := leader.Agent().Server().Store().Member(victim.Name)
	if err != nil || m == nil || m.Status != api.MemberFailed {
		t.Fatalf("recorded member %s: %+v, %v", victim.Name, m, err)
	}
	// It comes back as a voter when it returns.
	c.Restart(victim)
	c.WaitFor(15*time.Second, victim.Name+" re-added as a voter", func() bool {
		cfg, err := cl.RaftConfiguration(ctx)
		return err == nil && len(cfg.Servers) == 3
	})
}

func TestGracefulLeaveRemovesServer(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, time.Minute)
	leader := c.Leader()
	c.Leave(leader) // the leader hands over, then leaves
	newLeader := c.WaitLeader(10 * time.Second)
	cl := newLeader.Client(t)
	c.WaitFor(10*time.Second, "the departed leader removed from the configuration", func() bool {
		cfg, err := cl.RaftConfiguration(ctx)
		return err == nil && len(cfg.Servers) == 2
	})
	m, _ := newLeader.Agent().Server().Store().Member(leader.Name)
	c.WaitFor(5*time.Second, "member recorded as left", func() bool {
		m, _ = newLeader.Agent().Server().Store().Member(leader.Name)
		return m != nil && m.Status == api.MemberLeft
	})
	if ok, _, err := cl.KVPut(ctx, "after/leave", []byte("x"), nil); err != nil || !ok {
		t.Fatalf("write after leave: %v", err)
	}
}
