package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/herd-cluster/herd/api"
)

// bootstrapLoop waits until BootstrapExpect servers are alive in gossip,
// then writes the first Raft configuration naming all of them. Every
// server does the same with the same set, so they agree. It gives up if
// another server already has a leader (this one will be added as a voter).
func (s *Server) bootstrapLoop() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.shutdownCh:
			return
		case <-t.C:
		}
		if name, _ := s.Leader(); name != "" {
			return // already part of a cluster
		}
		var servers []api.Member
		for _, m := range s.cfg.Gossip.Members() {
			if m.Role == "server" && m.Status == api.MemberAlive && m.RPCAddr != "" {
				servers = append(servers, m)
			}
		}
		if len(servers) < s.cfg.BootstrapExpect {
			continue
		}
		if s.othersHaveLeader(servers) {
			s.logger.Info("found an existing cluster; waiting to be added instead of bootstrapping")
			return
		}
		sort.Slice(servers, func(i, j int) bool { return servers[i].Name < servers[j].Name })
		var cfg raft.Configuration
		for _, m := range servers {
			cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(m.Name), Address: raft.ServerAddress(m.RPCAddr), Suffrage: raft.Voter})
		}
		s.logger.Info("bootstrapping raft", "servers", len(servers))
		if err := s.raft.BootstrapCluster(cfg).Error(); err != nil && err != raft.ErrCantBootstrap {
			s.logger.Error("bootstrap failed", "err", err)
		}
		return
	}
}

// othersHaveLeader asks the other servers' APIs whether they know a leader.
func (s *Server) othersHaveLeader(servers []api.Member) bool {
	for _, m := range servers {
		if m.Name == s.cfg.NodeName || m.APIAddr == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.scheme+"://"+m.APIAddr+"/v1/status/leader", nil)
		resp, err := s.client.Do(req)
		if err == nil {
			var leader string
			_ = json.NewDecoder(resp.Body).Decode(&leader)
			resp.Body.Close()
			if leader != "" {
				cancel()
				return true
			}
		}
		cancel()
	}
	return false
}
