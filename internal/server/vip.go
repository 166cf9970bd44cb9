package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

// VIP leases.
//
// Exactly one node may hold a VIP's address. The replicated state records
// the holder; the lease that entitles it is kept by the leader alone, by
// its own monotonic clock, so that no two machines' wall clocks are ever
// compared:
//
//   - A renewal is answered by the leader without the log, once a quorum
//     has confirmed that it still leads, and only while the lease has not
//     run out. The holder counts its lease from when it *sent* the
//     renewal, and removes the address by its own clock a quarter of a
//     lease before the lease can run out at the leader.
//   - A claim by another node is granted only once the holder's lease has
//     run out at the leader: a full lease after the last renewal the
//     leader answered. Renewals and claims are decided under one lock, so
//     a renewal is never answered once a claim was granted.
//   - A new leader knows nothing of the renewals its predecessor answered,
//     so it first gives every holder a full lease from the moment it took
//     office.
//
// The holder's lease ends, by its clock, before the leader's can: its
// count starts earlier (when it sent the renewal, which the leader
// answered later) and is shorter (by the margin). Clock rates drift by
// parts per million; the margin is a quarter of the lease.

// vipLeases is the leader's view of the VIP leases.
type vipLeases struct {
	mu sync.Mutex
	// term is the Raft term these leases belong to (0: not set up).
	term   uint64
	leases map[string]*vipLease
}

type vipLease struct {
	holder string
	last   time.Time // when the leader last granted or renewed it
}

// resetVIPLeases starts the leases of a new term: every VIP that has a
// holder gets a full lease from now.
func (s *Server) resetVIPLeases(term uint64) error {
	_, vips, err := s.store.VIPs(nil)
	if err != nil {
		return err
	}
	now := time.Now()
	l := &s.vips
	l.mu.Lock()
	defer l.mu.Unlock()
	l.term = term
	l.leases = map[string]*vipLease{}
	for _, v := range vips {
		if v.Holder != "" {
			l.leases[v.Name] = &vipLease{holder: v.Holder, last: now}
		}
	}
	return nil
}

// clearVIPLeases forgets the leases when leadership ends.
func (s *Server) clearVIPLeases() {
	s.vips.mu.Lock()
	s.vips.term, s.vips.leases = 0, nil
	s.vips.mu.Unlock()
}

// prepareVIP decides a VIP claim, renewal or release on the leader. It
// returns the answer when the command needs no log entry (a renewal, a
// refused claim, a claim by the holder), or nil to go on and commit it.
func (s *Server) prepareVIP(c *Command) (*Result, error) {
	_, v, err := s.store.VIP(nil, c.ID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return &Result{Error: fmt.Sprintf("vip %q not found", c.ID), Kind: KindNotFound}, nil
	}
	lease := spec.VIPDefaults(v.VIP).Lease.D()
	answer := func(granted bool, holder, reason string) *Result {
		return &Result{OK: granted, Lease: &api.VIPLease{Holder: holder, Granted: granted, Lease: api.Duration(lease), Reason: reason}}
	}
	l := &s.vips
	l.mu.Lock()
	if l.term == 0 || l.term != s.raft.CurrentTerm() {
		l.mu.Unlock()
		return nil, ErrNotLeader // not set up for this term yet: ask again
	}
	now := time.Now()
	cur := l.leases[c.ID]
	live := cur != nil && cur.holder != "" && now.Sub(cur.last) < lease
	switch {
	case c.Op == OpVIPRenew:
		if c.Holder == "" || v.Holder != c.Holder || cur == nil || cur.holder != c.Holder {
			l.mu.Unlock()
			return answer(false, v.Holder, "not the holder"), nil
		}
		if !live {
			l.mu.Unlock()
			return answer(false, v.Holder, "the lease ran out; claim it again"), nil
		}
		cur.last = now
		l.mu.Unlock()
		// Answer only what a quorum confirms this server still leads:
		// a deposed leader must not extend a lease.
		if err := s.raft.VerifyLeader().Error(); err != nil {
			return nil, ErrNotLeader
		}
		return answer(true, c.Holder, ""), nil

	case c.Holder == "": // a release by node c.Key
		defer l.mu.Unlock()
		if v.Holder != c.Key || v.Holder == "" {
			return answer(false, v.Holder, "not the holder"), nil
		}
		// The releasing node removed the address before it asked: the
		// address is free at once.
		delete(l.leases, c.ID)
		return nil, nil

	default: // a claim by c.Holder
		defer l.mu.Unlock()
		if ok, why := s.vipEligible(&v.VIP, c.Holder); !ok {
			return answer(false, v.Holder, why), nil
		}
		if live {
			if cur.holder == c.Holder && v.Holder == c.Holder {
				cur.last = now // the holder claiming again is a renewal
				return answer(true, c.Holder, ""), nil
			}
			left := lease - now.Sub(cur.last)
			return answer(false, cur.holder, fmt.Sprintf("held by %s, whose lease runs %s more", cur.holder, left.Round(time.Millisecond))), nil
		}
		// Granted: from now the claimant holds the lease, even before the
		// entry commits (should it fail, the next claim waits a lease).
		l.leases[c.ID] = &vipLease{holder: c.Holder, last: now}
		return nil, nil
	}
}

// vipEligible says whether a node may hold v (by its gossip record: alive,
// able to hold VIPs, in the VIP's nodes, with its labels), and if not why.
func (s *Server) vipEligible(v *api.VIP, node string) (bool, string) {
	m, ok := s.cfg.Gossip.Member(node)
	switch {
	case !ok:
		return false, fmt.Sprintf("node %s is not a member", node)
	case m.Status != api.MemberAlive:
		return false, fmt.Sprintf("node %s is %s", node, m.Status)
	case !m.VIPs:
		return false, fmt.Sprintf("node %s cannot hold VIPs (no gateway, vip.disabled, or no CAP_NET_ADMIN)", node)
	case !spec.VIPEligible(v, node, m.Labels):
		return false, fmt.Sprintf("node %s is not eligible for vip %s (nodes, labels)", node, v.Name)
	}
	return true, ""
}

// applyVIPHolder applies a granted claim or a release.
func (f *fsm) applyVIPHolder(idx uint64, c *Command) (*api.VIPLease, error) {
	_, v, err := f.store.VIP(nil, c.ID)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("vip %q: not found", c.ID)
	}
	lease := api.Duration(spec.VIPDefaults(v.VIP).Lease.D())
	if c.Holder == "" && v.Holder != c.Key {
		return &api.VIPLease{Holder: v.Holder, Lease: lease, Reason: "not the holder"}, nil
	}
	if err := f.store.VIPSetHolder(idx, c.ID, c.Holder, c.Message); err != nil {
		return nil, err
	}
	return &api.VIPLease{Holder: c.Holder, Granted: c.Holder != "", Lease: lease}, nil
}

// VIPClaim asks for node to hold VIP name (reason says why, for the
// record); the answer says whether it holds it now.
func (s *Server) VIPClaim(ctx context.Context, name, node, reason string) (*api.VIPLease, error) {
	return s.vipCall(ctx, &Command{Op: OpVIPSetHolder, ID: name, Holder: node, Message: reason})
}

// VIPRenew extends node's lease on VIP name.
func (s *Server) VIPRenew(ctx context.Context, name, node string) (*api.VIPLease, error) {
	return s.vipCall(ctx, &Command{Op: OpVIPRenew, ID: name, Holder: node})
}

// VIPRelease gives up node's hold on VIP name; the node must have removed
// the address first.
func (s *Server) VIPRelease(ctx context.Context, name, node, reason string) (*api.VIPLease, error) {
	return s.vipCall(ctx, &Command{Op: OpVIPSetHolder, ID: name, Key: node, Message: reason})
}

func (s *Server) vipCall(ctx context.Context, c *Command) (*api.VIPLease, error) {
	res, err := s.Apply(ctx, c)
	if err := resultErr(res, err); err != nil {
		return nil, err
	}
	if res.Lease == nil {
		return nil, fmt.Errorf("vip %s: the leader answered no lease", c.ID)
	}
	return res.Lease, nil
}
