package agent_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/netif"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// vipNet is a test network: one namespace per agent, each with a veth
// into a bridge (in a namespace of its own), on 10.200.50.0/24.
type vipNet struct {
	ns  []string // per agent
	nsH []*netif.Namespace
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

func newVIPNet(t *testing.T, n int) *vipNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	br := fmt.Sprintf("hvb%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", br).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", br).Run() })
	ipCmd(t, "-n", br, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", br, "link", "set", "br0", "up")
	v := &vipNet{}
	for i := range n {
		ns := fmt.Sprintf("hvn%d-%d", os.Getpid(), i)
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", br)
		ipCmd(t, "-n", ns, "addr", "add", fmt.Sprintf("10.200.50.%d/24", 10+i), "dev", "eth0")
		ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", br, "link", "set", fmt.Sprintf("p%d", i), "master", "br0", "up")
		h, err := netif.OpenNamespace("/var/run/netns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		v.ns, v.nsH = append(v.ns, ns), append(v.nsH, h)
	}
	return v
}

// holders returns the indexes of the namespaces that have the address.
func (v *vipNet) holders(t *testing.T, p netip.Prefix) []int {
	var out []int
	for i, h := range v.nsH {
		if has, err := h.Has("eth0", p); err == nil && has {
			out = append(out, i)
		}
	}
	return out
}

// TestVIPMovesBetweenNamespaces runs three servers and two clients; the
// VIP may go to the clients and the first server, each holding VIPs in a
// network namespace of its own joined by a bridge: the highest-priority
// node takes the VIP (preempting whoever was faster); when its agent stops, another takes it; when that
// one leaves gracefully (its gateway drains first), the VIP moves again,
// at once. Throughout, a watcher checks every few milliseconds that no
// two namespaces have the address.
func TestVIPMovesBetweenNamespaces(t *testing.T) {
	vn := newVIPNet(t, 3)
	// Agents 0-2 are the servers, 3-4 the clients: the VIP's nodes are
	// server 0 (namespace 0) and the clients (namespaces 1 and 2).
	nsOf := map[int]int{0: 0, 3: 1, 4: 2}
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 2, Configure: func(i int, cfg *config.Config) {
		if k, ok := nsOf[i]; ok {
			cfg.VIP.Netns = "/var/run/netns/" + vn.ns[k]
			cfg.Gateway.HTTP = "127.0.0.1:0"
		}
	}})
	agents := []*testcluster.Node{c.Nodes[0], c.Nodes[3], c.Nodes[4]}
	ctx := testcluster.Ctx(t, 2*time.Minute)
	cl := c.Nodes[0].Client(t)
	pfx := netip.MustParsePrefix("10.200.50.100/24")
	const lease = 400 * time.Millisecond
	names := []string{agents[0].Name, agents[1].Name, agents[2].Name}
	if _, err := cl.VIPPut(ctx, &api.VIP{Name: "front", Address: pfx.String(), Nodes: names,
		Priority: map[string]int{names[1]: 200, names[2]: 150}, Preempt: true, Lease: api.Duration(lease)}); err != nil {
		t.Fatal(err)
	}

	// The watcher: never two holders.
	var overlaps atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			if h := vn.holders(t, pfx); len(h) > 1 {
				overlaps.Add(1)
				t.Errorf("two namespaces have the VIP: %v", h)
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	waitHolder := func(want int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			if h := vn.holders(t, pfx); len(h) == 1 && h[0] == want {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("namespace %d does not have the VIP after %s (holders: %v)", want, within, vn.holders(t, pfx))
		return 0
	}
	// The highest priority (node 1) ends up with the VIP: it takes it
	// free, or takes it back (preempt) from whoever was faster.
	waitHolder(1, 10*time.Second)
	v, _, err := cl.VIPGet(ctx, "front", nil)
	if err != nil || v.Holder != names[1] {
		t.Fatalf("the cluster says the holder is %+v (%v)", v, err)
	}

	// Node 1's agent stops without a leave: node 2 (next priority) takes
	// the VIP within about a lease.
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		c.Kill(agents[1])
	}()
	took := waitHolder(2, 10*time.Second) // timed from the start of the stop
	<-killed
	t.Logf("after the holder's agent stopped, the VIP moved in %s (lease %s)", took.Round(time.Millisecond), lease)

	// Node 2 leaves gracefully: its gateway drains and it releases the
	// VIP, so node 0 need not wait out the lease.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Leave(agents[2])
	}()
	took = waitHolder(0, 10*time.Second)
	<-done
	t.Logf("after the holder left, the VIP moved in %s", took.Round(time.Millisecond))
	v, _, err = c.Nodes[0].Client(t).VIPGet(ctx, "front", nil)
	if err != nil || v.Holder != names[0] || len(v.Moves) < 3 {
		t.Fatalf("the VIP's record: %+v (%v)", v, err)
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d checks saw two holders", n)
	}
}
