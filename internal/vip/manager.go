// Package vip is the node side of floating addresses (VIPs): for every
// VIP this node may hold, it claims the VIP from the cluster when it is
// free or its holder's lease ran out, puts the address on the interface
// and announces it, renews the lease four times per lease, and removes
// the address, by its own clock, a quarter of a lease before anyone else
// may take it, whenever a renewal does not come back in time. The lease
// itself is decided by the Raft leader (see package server).
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

// Net changes this node's addresses: package netif in production.
type Net interface {
	InterfaceFor(p netip.Prefix) (string, error)
	Add(ifname string, p netip.Prefix) error
	Remove(ifname string, p netip.Prefix) error
	Has(ifname string, p netip.Prefix) (bool, error)
	Announce(ctx context.Context, ifname string, a netip.Addr, count int, gap time.Duration) error
}

// Cluster is what the manager asks of the cluster: an *api.Client.
type Cluster interface {
	VIPList(ctx context.Context, q *api.QueryOptions) ([]*api.VIPEntry, *api.Meta, error)
	VIPClaim(ctx context.Context, name, node, reason string) (*api.VIPLease, error)
	VIPRenew(ctx context.Context, name, node string) (*api.VIPLease, error)
	VIPRelease(ctx context.Context, name, node, reason string) (*api.VIPLease, error)
	Members(ctx context.Context) ([]api.Member, error)
}

// Config is a Manager's setup.
type Config struct {
	// Node is this node's name; Labels its labels.
	Node   string
	Labels map[string]string
	// Serving reports whether this node's gateway serves traffic; a node
	// whose gateway does not gives up its VIPs. Nil means always.
	Serving func() bool
	Net     Net
	Cluster Cluster
	// Fence, when set, also watches each address's fence time, from
	// outside the agent (a ProcessFence): the address goes even if the
	// agent is killed or frozen.
	Fence  Fence
	Logger *slog.Logger
}

// Manager keeps this node's share of the VIPs.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	specs   map[string]*api.VIPEntry // the latest list, by name
	members map[string]api.Member
	held    map[string]bool
}

// New returns a Manager; Run starts it.
func New(cfg Config) *Manager {
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: l, specs: map[string]*api.VIPEntry{}, members: map[string]api.Member{}, held: map[string]bool{}}
}

// Held returns the names of the VIPs whose address this node holds now.
func (m *Manager) Held() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n, h := range m.held {
		if h {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Run keeps the VIPs until ctx ends: it watches the VIP list and the
// members, and runs one holder loop per VIP. When ctx ends every address
// this node holds is removed and released (a graceful stop: the next
// holder need not wait for the lease).
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	loops := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range loops {
			stop()
		}
	}()
	var index uint64
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		list, meta, err := m.cfg.Cluster.VIPList(wctx, &api.QueryOptions{WaitIndex: index, WaitTime: 30 * time.Second, Stale: true})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				m.log.Debug("reading the VIPs", "err", err, "retry_in", backoff)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if meta != nil && meta.Index < index {
			index = 0 // the servers' state went back (a restore): start over
		} else if meta != nil {
			index = meta.Index
		}
		m.mu.Lock()
		m.specs = map[string]*api.VIPEntry{}
		for _, v := range list {
			m.specs[v.Name] = v
		}
		m.mu.Unlock()
		if first {
			m.cleanStale(list)
			first = false
		}
		for _, v := range list {
			if _, ok := loops[v.Name]; !ok {
				lctx, stop := context.WithCancel(ctx)
				loops[v.Name] = stop
				name := v.Name
				wg.Go(func() { m.hold(lctx, name) })
			}
		}
		for name, stop := range loops {
			if _, ok := m.spec(name); !ok {
				stop()
				delete(loops, name)
			}
		}
	}
}

// cleanStale removes, at start-up, VIP addresses this node still has on
// its interfaces but does not hold in the cluster's state (an agent that
// was killed while holding one left it behind).
func (m *Manager) cleanStale(list []*api.VIPEntry) {
	for _, v := range list {
		ifname, pfx, err := m.where(&v.VIP)
		if err != nil {
			continue
		}
		if has, err := m.cfg.Net.Has(ifname, pfx); err == nil && has {
			m.log.Warn("removing a VIP address left on this node", "vip", v.Name, "address", v.Address, "interface", ifname, "holder", v.Holder)
			if err := m.cfg.Net.Remove(ifname, pfx); err != nil {
				m.log.Error("removing a stale VIP address", "vip", v.Name, "err", err)
			}
		}
	}
}

func (m *Manager) spec(name string) (*api.VIPEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.specs[name]
	return v, ok
}

// where is the interface and prefix of a VIP on this node.
func (m *Manager) where(v *api.VIP) (string, netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(v.Address)
	if err != nil {
		return "", pfx, fmt.Errorf("vip %s: %w", v.Name, err)
	}
	if v.Interface != "" {
		return v.Interface, pfx, nil
	}
	ifname, err := m.cfg.Net.InterfaceFor(pfx)
	return ifname, pfx, err
}

// eligible says whether this node may hold v now, and if not why.
func (m *Manager) eligible(v *api.VIP) (bool, string) {
	if !spec.VIPEligible(v, m.cfg.Node, m.cfg.Labels) {
		return false, "not one of its nodes"
	}
	if m.cfg.Serving != nil && !m.cfg.Serving() {
		return false, "the gateway is not serving"
	}
	if _, _, err := m.where(v); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// rank is how many alive eligible nodes come before this one for v (by
// priority, then name): a free VIP goes to the first.
func (m *Manager) rank(v *api.VIP) int {
	mine := spec.VIPPriority(v, m.cfg.Node)
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for name, mem := range m.members {
		if name == m.cfg.Node || mem.Status != api.MemberAlive || !mem.VIPs || !spec.VIPEligible(v, name, mem.Labels) {
			continue
		}
		if p := spec.VIPPriority(v, name); p > mine || p == mine && name < m.cfg.Node {
			n++
		}
	}
	return n
}

// refreshMembers reads the member list for ranking and preemption.
func (m *Manager) refreshMembers(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ms, err := m.cfg.Cluster.Members(cctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	m.members = map[string]api.Member{}
	for _, mem := range ms {
		m.members[mem.Name] = mem
	}
	m.mu.Unlock()
}

// hold runs one VIP until ctx ends.
func (m *Manager) hold(ctx context.Context, name string) {
	h := &holder{m: m, name: name}
	defer h.drop(context.Background(), "stopping", true)
	defer h.bg.Wait() // the announcements end with ctx
	for ctx.Err() == nil {
		v, ok := m.spec(name)
		if !ok {
			return
		}
		lease := spec.VIPDefaults(v.VIP).Lease.D()
		if ok, why := m.eligible(&v.VIP); !ok {
			if h.holding {
				h.drop(ctx, "not eligible: "+why, true)
			}
			sleep(ctx, lease/4)
			continue
		}
		if h.holding {
			h.renew(ctx, v, lease)
			continue
		}
		h.claim(ctx, v, lease)
	}
}

// holder is one VIP's state on this node.
type holder struct {
	m       *Manager
	name    string
	holding bool
	ifname  string
	pfx     netip.Prefix
	// until is when this node must have removed the address unless a
	// renewal extends it: the send time of the last granted request plus
	// three quarters of the lease.
	until time.Time
	timer *time.Timer
	// fenced is set when the fence timer removed the address.
	fenced atomic.Bool
	// bg owns the announcements.
	bg sync.WaitGroup
}

// claim asks for the VIP, after a delay by rank when it is free.
func (h *holder) claim(ctx context.Context, v *api.VIPEntry, lease time.Duration) {
	m := h.m
	m.refreshMembers(ctx)
	if r := m.rank(&v.VIP); r > 0 && v.Holder == "" {
		// Let the higher-priority nodes take a free VIP first.
		if !sleep(ctx, time.Duration(r)*lease/4) {
			return
		}
	}
	reason := "claimed: no holder"
	if v.Holder != "" && v.Holder != m.cfg.Node {
		reason = "claimed: the lease of " + v.Holder + " ran out"
	}
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, lease/2)
	l, err := m.cfg.Cluster.VIPClaim(cctx, h.name, m.cfg.Node, reason)
	cancel()
	if err != nil || !l.Granted {
		if err != nil && ctx.Err() == nil {
			m.log.Debug("claiming a VIP", "vip", h.name, "err", err)
		}
		sleep(ctx, lease/4)
		return
	}
	ifname, pfx, err := m.where(&v.VIP)
	if err != nil {
		m.log.Error("a VIP was granted but has no interface here", "vip", h.name, "err", err)
		h.release(ctx, "no interface: "+err.Error())
		sleep(ctx, lease)
		return
	}
	h.ifname, h.pfx = ifname, pfx
	h.fenced.Store(false)
	h.extend(sent, lease)
	if err := m.cfg.Net.Add(ifname, pfx); err != nil {
		m.log.Error("adding a VIP address", "vip", h.name, "address", v.Address, "interface", ifname, "err", err)
		h.drop(ctx, "adding the address failed: "+err.Error(), true)
		sleep(ctx, lease)
		return
	}
	h.holding = true
	m.setHeld(h.name, true)
	m.log.Info("took a VIP", "vip", h.name, "address", v.Address, "interface", ifname, "reason", reason)
	h.bg.Go(func() { // announcing must not hold up the first renewal
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := m.cfg.Net.Announce(actx, ifname, pfx.Addr(), 3, 100*time.Millisecond); err != nil && actx.Err() == nil {
			m.log.Warn("announcing a VIP", "vip", h.name, "err", err)
		}
	})
	sleep(ctx, lease/4)
}

// renew extends the lease, or gives the VIP up when it must.
func (h *holder) renew(ctx context.Context, v *api.VIPEntry, lease time.Duration) {
	m := h.m
	if h.fenced.Swap(false) {
		// The address is gone: claim it again (a holder whose lease is
		// still alive at the leader gets it back at once).
		h.holding = false
		return
	}
	if v.Preempt {
		m.refreshMembers(ctx)
		if m.rank(&v.VIP) > 0 {
			h.drop(ctx, "preempted by a higher-priority node", true)
			return
		}
	}
	sent := time.Now()
	cctx, cancel := context.WithDeadline(ctx, h.until)
	l, err := m.cfg.Cluster.VIPRenew(cctx, h.name, m.cfg.Node)
	cancel()
	switch {
	case err == nil && l.Granted:
		h.extend(sent, lease)
	case err == nil:
		h.drop(ctx, "renewal refused: "+l.Reason, false)
		return
	case !time.Now().Before(h.until):
		return // the fence timer removes the address
	}
	wait := time.Until(sent.Add(lease / 4))
	if left := time.Until(h.until); left < wait {
		wait = left
	}
	sleep(ctx, wait)
}

// extend moves the fence to a lease after sent, less the margin.
func (h *holder) extend(sent time.Time, lease time.Duration) {
	h.until = sent.Add(lease - lease/4)
	if f := h.m.cfg.Fence; f != nil {
		if err := f.Hold(h.name, h.ifname, h.pfx, h.until); err != nil {
			h.m.log.Warn("the VIP fence watchdog is gone: this agent fences alone", "vip", h.name, "err", err)
		}
	}
	if h.timer == nil {
		h.timer = time.AfterFunc(time.Until(h.until), h.fence)
	} else {
		h.timer.Reset(time.Until(h.until))
	}
}

// unwatch tells the watchdog the address is gone.
func (h *holder) unwatch() {
	if f := h.m.cfg.Fence; f != nil {
		_ = f.Drop(h.name)
	}
}

// fence removes the address when the lease may run out before a renewal
// came back: by this node's clock, a quarter of a lease before the
// leader could give the VIP to another node.
func (h *holder) fence() {
	if err := h.m.cfg.Net.Remove(h.ifname, h.pfx); err != nil {
		h.m.log.Error("removing a VIP address whose lease ran out", "vip", h.name, "err", err)
		return
	}
	h.m.log.Warn("removed a VIP address: no renewal came back in time", "vip", h.name, "address", h.pfx)
	h.unwatch()
	h.fenced.Store(true)
	h.m.setHeld(h.name, false)
}

// drop removes the address and, when release is set, gives the VIP up in
// the cluster so that another node need not wait for the lease.
func (h *holder) drop(ctx context.Context, why string, release bool) {
	if h.timer != nil {
		h.timer.Stop()
	}
	was := h.holding
	h.holding = false
	if h.ifname != "" {
		if err := h.m.cfg.Net.Remove(h.ifname, h.pfx); err != nil {
			h.m.log.Error("removing a VIP address", "vip", h.name, "err", err)
			return // it may still be there: do not let anyone take it early
		}
		h.unwatch()
	}
	h.m.setHeld(h.name, false)
	if !was {
		return
	}
	h.m.log.Info("gave up a VIP", "vip", h.name, "why", why)
	if release {
		h.release(ctx, why)
	}
}

func (h *holder) release(ctx context.Context, why string) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := h.m.cfg.Cluster.VIPRelease(rctx, h.name, h.m.cfg.Node, why); err != nil && !errors.Is(err, context.Canceled) {
		h.m.log.Debug("releasing a VIP", "vip", h.name, "err", err)
	}
}

func (m *Manager) setHeld(name string, held bool) {
	m.mu.Lock()
	m.held[name] = held
	m.mu.Unlock()
}

// sleep waits d or until ctx ends, and reports whether it waited in full.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
