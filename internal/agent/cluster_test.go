package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func TestThreeServersReplicate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, 30*time.Second)
	for i, n := range c.Nodes {
		key := fmt.Sprintf("from/%s", n.Name)
		if ok, _, err := n.Client(t).KVPut(ctx, key, []byte(fmt.Sprint(i)), nil); err != nil || !ok {
			t.Fatalf("put on %s: ok=%v err=%v", n.Name, ok, err)
		}
	}
	for _, n := range c.Nodes {
		for i, m := range c.Nodes {
			kv, _, err := n.Client(t).KVGet(ctx, "from/"+m.Name, nil)
			if err != nil || kv == nil || string(kv.Value) != fmt.Sprint(i) {
				t.Fatalf("get from/%s on %s: %+v, %v", m.Name, n.Name, kv, err)
			}
		}
	}
	cfg, err := c.Nodes[0].Client(t).RaftConfiguration(ctx)
	if err != nil || len(cfg.Servers) != 3 {
		t.Fatalf("raft configuration: %+v, %v", cfg, err)
	}
}

// Concurrent writers on every server share log entries (the leader packs
// the writes waiting at one moment into one entry), yet every CAS
// increment of a shared counter lands exactly once.
func TestConcurrentCASIncrementsAreExact(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	c.WaitLeader(10 * time.Second)
	ctx := testcluster.Ctx(t, 60*time.Second)
	const workers, perWorker, counters = 24, 15, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.Nodes[w%len(c.Nodes)].Client(t)
			key := fmt.Sprintf("counter/%d", w%counters)
			for done := 0; done < perWorker; {
				kv, _, err := cl.KVGet(ctx, key, nil)
				if err != nil {
					errs <- err
					return
				}
				n, idx := 0, uint64(0)
				if kv != nil {
					n, _ = strconv.Atoi(string(kv.Value))
					idx = kv.ModifyIndex
				}
				ok, _, err := cl.KVPut(ctx, key, []byte(strconv.Itoa(n+1)), &api.WriteOptions{CAS: &idx})
				if err != nil {
					errs <- err
					return
				}
				if ok {
					done++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range counters {
		kv, _, err := c.Nodes[0].Client(t).KVGet(ctx, fmt.Sprintf("counter/%d", i), nil)
		if err != nil || kv == nil {
			t.Fatalf("counter/%d: %v, %v", i, kv, err)
		}
		n, _ := strconv.Atoi(string(kv.Value))
		total += n
	}
	if total != workers*perWorker {
		t.Fatalf("counters sum to %d after %d successful CAS increments", total, workers*perWorker)
	}
	// The leader's histogram of commands per entry shows packing happened.
	m, err := c.Leader().Client(t).Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !packedMoreThanOne(string(m)) {
		t.Errorf("no log entry carried more than one command:\n%s", grepLines(string(m), "herd_raft_entry_commands"))
	}
}

// packedMoreThanOne reports whether the entry-size histogram counted any
// entry with more than one command.
func packedMoreThanOne(metrics string) bool {
	var le1, count float64
	for _, line := range strings.Split(metrics, "\n") {
		switch {
		case strings.HasPrefix(line, `herd_raft_entry_commands_bucket{le="1"}`):
			fmt.Sscan(strings.Fields(line)[1], &le1)
		case strings.HasPrefix(line, "herd_raft_entry_commands_count"):
			fmt.Sscan(strings.Fields(line)[1], &count)
		}
	}
	return count > le1
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRaftStatsShowEveryServersLag: the Raft configuration with ?stats
// carries each server's term, applied index and lag behind the leader.
func TestRaftStatsShowEveryServersLag(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, 30*time.Second)
	cl := c.Nodes[1].Client(t)
	if _, _, err := cl.KVPut(ctx, "x", []byte("1"), nil); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	testcluster.WaitFor(t, 10*time.Second, "stats for every server", func() bool {
		cfg, err := cl.RaftStats(ctx)
		if err != nil {
			return false
		}
		for _, s := range cfg.Servers {
			if s.Term == "" || s.AppliedIndex == 0 || s.Lag == nil || *s.Lag < 0 || *s.Lag > 50 || s.StatsError != "" {
				return false
			}
		}
		raw, _ = json.Marshal(cfg.Servers)
		return len(cfg.Servers) == 3
	})
	t.Logf("servers: %s", raw)
}

// TestNodesUsageAsksEveryNode: /v1/nodes?usage carries the CPU each
// node's replicas use, asked of each node's own agent (also through a
// client agent's proxy).
func TestNodesUsageAsksEveryNode(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Clients: 1})
	ctx := testcluster.Ctx(t, 30*time.Second)
	cl := c.Node("client1").Client(t)
	testcluster.WaitFor(t, 15*time.Second, "both nodes with their usage", func() bool {
		nodes, err := cl.NodesUsage(ctx)
		if err != nil || len(nodes) != 2 {
			return false
		}
		for _, n := range nodes {
			if n.UsageCPU == nil || *n.UsageCPU < 0 {
				return false
			}
		}
		return true
	})
	plain, _, err := cl.Nodes(ctx, nil)
	if err != nil || len(plain) != 2 || plain[0].UsageCPU != nil {
		t.Fatalf("nodes without ?usage: %+v %v", plain, err)
	}
}

// TestFirstServerRejoinsAfterRestart: the server that created the cluster
// has no join address; restarted, it finds the others through the peers
// it saved.
func TestFirstServerRejoinsAfterRestart(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	first := c.Nodes[0]
	testcluster.WaitFor(t, 20*time.Second, "the peers file", func() bool {
		_, err := os.Stat(filepath.Join(first.Agent().DataDir(), "peers.json"))
		return err == nil
	})
	c.Kill(first)
	first.Config.RetryJoin = nil // as it was configured: no join address
	first.Config.Join = nil
	if err := c.StartNode(first); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "the restarted first server to see the others alive", func() bool {
		alive := 0
		for _, m := range first.Agent().Members() {
			if m.Status == api.MemberAlive {
				alive++
			}
		}
		return alive == 3
	})
}
