package agent_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// TestVIPLeaseNeverOverlaps drives the VIP lease protocol on a real
// 3-server cluster: one holder at a time; another node's claim is refused
// while the holder renews and granted only a full lease after the last
// renewal the leader answered; a renewal after the lease ran out is
// refused; a release frees the address at once; a new leader gives the
// holder a full lease before anyone else may take it.
func TestVIPLeaseNeverOverlaps(t *testing.T) {
	// The servers run gateways (so they may hold VIPs); the client does
	// not.
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1, Configure: func(i int, cfg *config.Config) {
		if i < 3 {
			cfg.Gateway.HTTP = "127.0.0.1:0"
		}
	}})
	ctx := testcluster.Ctx(t, 2*time.Minute)
	cl := c.Nodes[0].Client(t)
	n1, n2 := c.Nodes[1].Name, c.Nodes[2].Name
	const lease = 300 * time.Millisecond
	if _, err := cl.VIPPut(ctx, &api.VIP{Name: "front", Address: "10.200.9.100/24", Lease: api.Duration(lease)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.VIPPut(ctx, &api.VIP{Name: "bad", Address: "10.200.9.0/24"}); err == nil || !strings.Contains(err.Error(), "network or broadcast") {
		t.Fatalf("a network address was accepted: %v", err)
	}
	if l, err := cl.VIPClaim(ctx, "front", n1, "first"); err != nil || !l.Granted || l.Holder != n1 || l.Lease.D() != lease {
		t.Fatalf("first claim: %+v %v", l, err)
	}
	if l, err := cl.VIPClaim(ctx, "front", "nobody-here", "x"); err != nil || l.Granted || !strings.Contains(l.Reason, "not a member") {
		t.Fatalf("a claim by a node that is not a member: %+v %v", l, err)
	}
	if l, err := cl.VIPClaim(ctx, "front", c.Nodes[3].Name, "x"); err != nil || l.Granted || !strings.Contains(l.Reason, "cannot hold VIPs") {
		t.Fatalf("a claim by a node without a gateway: %+v %v", l, err)
	}

	// n1 renews every quarter lease for 1.5 s while n2 keeps claiming.
	stop := time.Now().Add(1500 * time.Millisecond)
	var lastSent time.Time
	for time.Now().Before(stop) {
		sent := time.Now()
		l, err := cl.VIPRenew(ctx, "front", n1)
		if err != nil || !l.Granted {
			t.Fatalf("renewal refused while renewing on time: %+v %v", l, err)
		}
		lastSent = sent
		l, err = cl.VIPClaim(ctx, "front", n2, "try")
		if err != nil || l.Granted || l.Holder != n1 {
			t.Fatalf("n2's claim while n1 renews: %+v %v", l, err)
		}
		time.Sleep(lease / 4)
	}
	// n1 stops renewing: n2 gets it, but not before a full lease after
	// n1's last renewal was sent.
	var granted time.Time
	for granted.IsZero() {
		l, err := cl.VIPClaim(ctx, "front", n2, "lease expired")
		if err != nil {
			t.Fatal(err)
		}
		if l.Granted {
			granted = time.Now()
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if gap := granted.Sub(lastSent); gap < lease {
		t.Fatalf("n2 got the VIP %s after n1's last renewal, less than the %s lease", gap, lease)
	}
	if l, err := cl.VIPRenew(ctx, "front", n1); err != nil || l.Granted || l.Holder != n2 {
		t.Fatalf("the old holder renewed after losing the VIP: %+v %v", l, err)
	}
	// A release by a node that does not hold it is refused; by the
	// holder, it frees the VIP at once.
	if l, err := cl.VIPRelease(ctx, "front", n1, "x"); err != nil || l.Holder != n2 {
		t.Fatalf("a release by a non-holder: %+v %v", l, err)
	}
	if _, err := cl.VIPRelease(ctx, "front", n2, "gateway down"); err != nil {
		t.Fatal(err)
	}
	if l, err := cl.VIPClaim(ctx, "front", n1, "free"); err != nil || !l.Granted {
		t.Fatalf("a claim right after a release: %+v %v", l, err)
	}
	v, _, err := cl.VIPGet(ctx, "front", nil)
	if err != nil || v.Holder != n1 || len(v.Moves) != 4 {
		t.Fatalf("the VIP's record: %+v %v", v, err)
	}
	wantMoves := []string{"->" + n1, n1 + "->" + n2, n2 + "->", "->" + n1}
	for i, m := range v.Moves {
		if got := m.From + "->" + m.To; got != wantMoves[i] {
			t.Errorf("move %d: %s, want %s", i, got, wantMoves[i])
		}
	}

	// A new leader: the holder's lease starts again in full, so a claim
	// right after the election waits a lease.
	leader := c.WaitLeader(10 * time.Second)
	holder, claimer := n1, n2
	if leader.Name == n1 || leader.Name == n2 {
		t.Logf("leader %s is one of the VIP nodes; claiming through the others", leader.Name)
	}
	var survivor *testcluster.Node
	for _, n := range c.Nodes[:3] {
		if n != leader {
			survivor = n
		}
	}
	scl := survivor.Client(t)
	if leader.Name == holder {
		holder, claimer = claimer, holder
		if _, err := scl.VIPRelease(ctx, "front", n1, "test"); err != nil {
			t.Fatal(err)
		}
		if l, err := scl.VIPClaim(ctx, "front", holder, "test"); err != nil || !l.Granted {
			t.Fatalf("%+v %v", l, err)
		}
	}
	// A longer lease from here, so that a slow election on a busy machine
	// cannot eat the new leader's grace before the first claim arrives.
	if _, err := scl.VIPPut(ctx, &api.VIP{Name: "front", Address: "10.200.9.100/24", Lease: api.Duration(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if l, err := scl.VIPRenew(ctx, "front", holder); err != nil || !l.Granted {
		t.Fatalf("%+v %v", l, err)
	}
	c.Kill(leader)
	if leader.Name == claimer {
		return // the claimer died with the leader: nothing more to check
	}
	// The claimer asks at once: its first answer comes from the new
	// leader (the server waits for one) and must be a refusal, the holder
	// keeping a full lease from the election; a later one is granted.
	first := true
	for {
		l, err := scl.VIPClaim(ctx, "front", claimer, "after election")
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
			continue // asked of the leader that died: ask again
		}
		if err != nil {
			t.Fatal(err)
		}
		if first && (l.Granted || l.Holder != holder) {
			t.Fatalf("the new leader's first answer gave the VIP away at once: %+v", l)
		}
		first = false
		if l.Granted {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
}
