package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/herd-cluster/herd/api"
)

// peersFile keeps the API addresses of the live servers this agent last
// saw, so that an agent restarted without join addresses (the server that
// created the cluster) finds the cluster again.
const peersFile = "peers.json"

// peersInterval is how often the list is brought up to date.
const peersInterval = 2 * time.Second

// peersLoop saves the live servers' API addresses whenever they change.
func (a *Agent) peersLoop(ctx context.Context) {
	var last []string
	t := time.NewTicker(peersInterval)
	defer t.Stop()
	for {
		var now []string
		for _, m := range a.gossip.Members() {
			if m.Role == "server" && m.Status == api.MemberAlive && m.Name != a.cfg.NodeName && m.APIAddr != "" {
				now = append(now, m.APIAddr)
			}
		}
		slices.Sort(now)
		if len(now) > 0 && !slices.Equal(now, last) {
			data, _ := json.Marshal(now)
			if err := writeFileAtomic(filepath.Join(a.dataDir, peersFile), data); err != nil {
				a.logger.Debug("saving the known peers", "err", err)
			} else {
				last = now
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C: // not gossip's Notify: the leader loop is its one consumer
		}
	}
}

// loadPeers reads the peers an earlier run saved (none if there is no
// file or it is unreadable).
func loadPeers(dataDir string) []string {
	data, err := os.ReadFile(filepath.Join(dataDir, peersFile))
	if err != nil {
		return nil
	}
	var peers []string
	if json.Unmarshal(data, &peers) != nil {
		return nil
	}
	return peers
}
