package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// waitAcquire blocks on the lock key until it is free, then takes it,
// returning when it got the lock and the fencing token.
func waitAcquire(ctx context.Context, t *testing.T, cl *api.Client, key, session string) (time.Time, uint64) {
	t.Helper()
	var index uint64
	for ctx.Err() == nil {
		ok, token, err := cl.KVAcquire(ctx, key, session, []byte("waiter"))
		if err != nil {
			t.Errorf("acquire: %v", err)
			return time.Time{}, 0
		}
		if ok {
			return time.Now(), token
		}
		kv, meta, err := cl.KVGet(ctx, key, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second})
		if err == nil {
			index = meta.Index
			_ = kv
		}
	}
	return time.Time{}, 0
}

// TestLockPassesWhenHolderStopsRenewing: the holder's process dies (no
// more renewals); the waiter gets the lock once the TTL runs out, with a
// higher fencing token.
func TestLockPassesWhenHolderStopsRenewing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, time.Minute)
	holder, waiter := c.Nodes[0].Client(t), c.Nodes[1].Client(t)
	const ttl = 2 * time.Second
	s1, err := holder.SessionCreate(ctx, &api.SessionEntry{Name: "holder", TTL: ttl.String()})
	if err != nil {
		t.Fatal(err)
	}
	ok, token1, err := holder.KVAcquire(ctx, "svc/leader", s1, []byte("holder"))
	if err != nil || !ok || token1 == 0 {
		t.Fatalf("holder acquire: %v %d %v", ok, token1, err)
	}
	s2, err := waiter.SessionCreate(ctx, &api.SessionEntry{Name: "waiter", TTL: "10s"})
	if err != nil {
		t.Fatal(err)
	}
	// The holder renews for a while, then "dies".
	for range 3 {
		time.Sleep(ttl / 2)
		if err := holder.SessionRenew(ctx, s1); err != nil {
			t.Fatal(err)
		}
	}
	died := time.Now()
	got, token2 := waitAcquire(ctx, t, waiter, "svc/leader", s2)
	took := got.Sub(died)
	t.Logf("lock passed %s after the holder's last renewal (TTL %s); tokens %d -> %d", took.Round(time.Millisecond), ttl, token1, token2)
	if took < ttl-100*time.Millisecond {
		t.Fatalf("lock passed after %s, before the holder's TTL (%s) ran out", took, ttl)
	}
	if took > ttl+time.Second {
		t.Fatalf("lock passed after %s, want within TTL %s (+1s)", took, ttl)
	}
	if token2 <= token1 {
		t.Fatalf("fencing token did not rise: %d then %d", token1, token2)
	}
	if err := holder.SessionRenew(ctx, s1); !api.IsNotFound(err) {
		t.Fatalf("renewing the expired session: %v, want not found", err)
	}
}

// TestLockPassesWhenHolderNodeDies: the session belongs to a client agent
// that crashes; the leader invalidates it as soon as gossip declares the
// node failed, long before its TTL.
func TestLockPassesWhenHolderNodeDies(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1})
	ctx := testcluster.Ctx(t, time.Minute)
	clientNode := c.Node("client1")
	holder := clientNode.Client(t)
	s1, err := holder.SessionCreate(ctx, &api.SessionEntry{TTL: "60s"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := holder.KVAcquire(ctx, "svc/leader", s1, nil); err != nil || !ok {
		t.Fatalf("acquire through the client agent: %v %v", ok, err)
	}
	waiter := c.Nodes[0].Client(t)
	s2, _ := waiter.SessionCreate(ctx, &api.SessionEntry{TTL: "60s"})
	c.Kill(clientNode)
	killed := time.Now()
	got, _ := waitAcquire(ctx, t, waiter, "svc/leader", s2)
	took := got.Sub(killed)
	t.Logf("lock passed %s after the holder's node was killed (TTL 60s)", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("lock passed after %s: the dead node's session was not invalidated", took)
	}
}
