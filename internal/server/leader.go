package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/herd-cluster/herd/api"
)

// monitorLeadership starts the leader loop when this server gains
// leadership and stops it when it loses it.
func (s *Server) monitorLeadership() {
	stop := func() {}
	defer func() { stop() }()
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		select {
		case <-s.shutdownCh:
			return
		case o := <-obsCh:
			lo := o.Data.(raft.LeaderObservation)
			// Requests on their way to the old leader (which may hang, not
			// just fail, when it is paused or cut off) give up now.
			s.newLeaderEpoch()
			s.metrics.leaderChanges.Inc()
			s.logger.Info("raft leader changed", "leader", string(lo.LeaderID))
		case isLeader := <-s.raft.LeaderCh():
			stop()
			stop = func() {}
			if isLeader {
				stop = s.startLeaderLoop()
			}
		}
	}
}

// leaderEpoch is a context that ends when the leader changes.
type leaderEpoch struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// epoch returns the context of the current leader's term of office, as
// this server knows it.
func (s *Server) epoch() context.Context {
	if e := s.leaderEpoch.Load(); e != nil {
		return e.ctx
	}
	return context.Background()
}

// newLeaderEpoch ends the current epoch and starts the next.
func (s *Server) newLeaderEpoch() {
	ctx, cancel := context.WithCancel(context.Background())
	if old := s.leaderEpoch.Swap(&leaderEpoch{ctx: ctx, cancel: cancel}); old != nil {
		old.cancel()
	}
}

// startLeaderLoop runs leaderLoop in a goroutine and returns the function
// that stops it and waits for it.
func (s *Server) startLeaderLoop() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.leaderLoop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// leaderLoop runs the leader's duties until ctx ends.
func (s *Server) leaderLoop(ctx context.Context) {
	s.logger.Info("acquired leadership")
	defer s.logger.Info("lost leadership")
	defer s.readyTerm.Store(0)
	defer s.clearVIPLeases()
	defer s.sessions.stopAll()

	// Everything committed in earlier terms must be applied before reads
	// on this leader are linearizable: a barrier committed in this term
	// is applied after all of them.
	for {
		term := s.raft.CurrentTerm()
		err := s.raft.Barrier(time.Minute).Error()
		if err == nil && s.IsLeader() && s.raft.CurrentTerm() == term {
			if err = s.resetVIPLeases(term); err == nil {
				s.readyTerm.Store(term)
				break
			}
		}
		if err == nil {
			err = errors.New("leadership changed during the barrier")
		}
		s.logger.Warn("barrier failed", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}

	if s.store.ClusterID() == "" {
		if _, err := s.ApplyLocal(ctx, &Command{Op: OpClusterInit, ID: newUUID()}); err != nil {
			s.logger.Warn("recording cluster id", "err", err)
		}
	}
	if err := s.recordPKI(ctx); err != nil {
		s.logger.Error("recording the cluster CA", "err", err)
	}
	term := s.raft.Stats()["term"]
	if _, err := s.ApplyLocal(ctx, &Command{Op: OpEvent, Event: &api.Event{Type: api.EventLeaderElected, Subject: s.cfg.NodeName,
		Message: fmt.Sprintf("%s leads (term %s)", s.cfg.NodeName, term), Attrs: map[string]string{"term": term}}}); err != nil {
		s.logger.Warn("recording the leader election", "err", err)
	}
	// Every session gets a full TTL from now: the old leader's timers are
	// lost with it, and clients deserve the grace.
	_, sessions, _ := s.store.SessionList(nil, "")
	for _, se := range sessions {
		s.sessions.reset(se)
	}

	var tasks sync.WaitGroup
	defer tasks.Wait()
	for _, task := range s.cfg.LeaderTasks {
		tasks.Go(func() { task(ctx) })
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Gossip.Notify():
		case <-tick.C:
		case id := <-s.sessions.expired:
			s.logger.Info("session expired", "session", id)
			s.sessions.stop(id)
			if _, err := s.ApplyLocal(ctx, &Command{Op: OpSessionDestroy, ID: id}); err != nil {
				s.logger.Warn("destroying expired session", "session", id, "err", err)
			}
		}
	}
}

// reconcile writes gossip's view of the members into the state and brings
// the Raft configuration in line with the live servers.
func (s *Server) reconcile(ctx context.Context) {
	members := s.cfg.Gossip.Members()
	for i := range members {
		m := &members[i]
		old, err := s.store.Member(m.Name)
		if err != nil {
			continue
		}
		if old == nil || memberChanged(old, m) {
			if _, err := s.ApplyLocal(ctx, &Command{Op: OpMemberUpsert, Member: m}); err != nil {
				s.logger.Warn("recording member state", "member", m.Name, "err", err)
				return
			}
		}
		if m.Status != api.MemberAlive {
			s.invalidateNodeSessions(ctx, m.Name)
		}
	}
	s.reconcileRaft(members)
}

func memberChanged(a, b *api.Member) bool {
	return a.Status != b.Status || a.Addr != b.Addr || a.APIAddr != b.APIAddr || a.RPCAddr != b.RPCAddr ||
		a.Role != b.Role || a.Zone != b.Zone || a.Version != b.Version || a.VIPs != b.VIPs || !maps.Equal(a.Labels, b.Labels)
}

// invalidateNodeSessions destroys the sessions of a node that failed or
// left, releasing its locks at once instead of after their TTL.
func (s *Server) invalidateNodeSessions(ctx context.Context, node string) {
	_, sessions, err := s.store.SessionList(nil, node)
	if err != nil {
		return
	}
	for _, se := range sessions {
		s.logger.Info("invalidating session of departed node", "session", se.ID, "member", node)
		if _, err := s.ApplyLocal(ctx, &Command{Op: OpSessionDestroy, ID: se.ID}); err != nil {
			s.logger.Warn("invalidating session", "session", se.ID, "err", err)
			return
		}
		s.sessions.stop(se.ID)
	}
}

// reconcileRaft adds live servers as voters, removes servers that left,
// and removes servers failed for longer than DeadServerCleanup as long as
// the remaining live voters still form a quorum.
func (s *Server) reconcileRaft(members []api.Member) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	inConfig := map[raft.ServerID]raft.Server{}
	for _, srv := range f.Configuration().Servers {
		inConfig[srv.ID] = srv
	}
	byName := map[string]api.Member{}
	for _, m := range members {
		if m.Role == "server" {
			byName[m.Name] = m
		}
	}
	for _, m := range byName {
		id := raft.ServerID(m.Name)
		srv, ok := inConfig[id]
		switch {
		case m.Status == api.MemberAlive && m.RPCAddr != "" && (!ok || string(srv.Address) != m.RPCAddr):
			s.logger.Info("adding raft voter", "member", m.Name, "addr", m.RPCAddr)
			if err := s.raft.AddVoter(id, raft.ServerAddress(m.RPCAddr), 0, 5*time.Second).Error(); err != nil {
				s.logger.Warn("adding raft voter", "member", m.Name, "err", err)
			}
		case ok && m.Status == api.MemberLeft && m.Name != s.cfg.NodeName:
			s.logger.Info("removing raft server that left", "member", m.Name)
			if err := s.raft.RemoveServer(id, 0, 5*time.Second).Error(); err != nil {
				s.logger.Warn("removing raft server", "member", m.Name, "err", err)
			}
		case ok && m.Status == api.MemberFailed && time.Since(m.StatusSince) > s.cfg.DeadServerCleanup:
			alive := 0
			for sid := range inConfig {
				if bm, ok := byName[string(sid)]; (ok && bm.Status == api.MemberAlive) || string(sid) == s.cfg.NodeName {
					alive++
				}
			}
			remaining := len(inConfig) - 1
			if alive < remaining/2+1 {
				s.logger.Warn("not removing dead server: the rest would lack a quorum", "member", m.Name, "alive_voters", alive, "voters_after", remaining)
				continue
			}
			s.logger.Info("removing dead server", "member", m.Name, "failed_for", time.Since(m.StatusSince).Round(time.Millisecond))
			if err := s.raft.RemoveServer(id, 0, 5*time.Second).Error(); err != nil {
				s.logger.Warn("removing dead server", "member", m.Name, "err", err)
			}
			delete(inConfig, id)
		}
	}
}
