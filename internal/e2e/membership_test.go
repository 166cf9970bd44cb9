//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"
)

// voters returns the names in the Raft configuration, as the observer
// sees it (nil when it cannot tell).
func (r *run) voters() []string {
	cfg, err := r.raftConfig()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, s.Node)
	}
	return out
}

// follower returns a server other than leader.
func follower(leader node) node {
	for _, n := range nodes {
		if n.server && n != leader {
			return n
		}
	}
	return node{}
}

// waitVoters waits until the Raft configuration has n servers.
func (r *run) waitVoters(n int, why string) {
	r.t.Helper()
	waitFor(r.t, 60*time.Second, why, func() bool { return len(r.voters()) == n })
}

// TestRemoveReAddServer is a membership change under load: a follower
// leaves (a graceful stop: it is removed from the Raft configuration),
// the two left carry on, then it starts again and is added back; then
// the same with the leader, which hands over leadership as it leaves.
func TestRemoveReAddServer(t *testing.T) {
	scenario(t, "remove, re-add a follower, a leader", func(r *run) {
		time.Sleep(3 * time.Second)
		leader := r.leader()
		follower := follower(leader)
		for _, victim := range []node{follower, leader} {
			at := time.Now()
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			_, err := docker(ctx, "stop", "-t", "10", container(victim))
			cancel()
			if err != nil {
				r.t.Fatal(err)
			}
			if victim == leader {
				r.failover(victim, at)
			}
			r.waitVoters(2, victim.name+" removed from the Raft configuration")
			r.t.Logf("%s left; the configuration is %v", victim.name, r.voters())
			time.Sleep(5 * time.Second) // writes go on with two voters
			if _, err := docker(r.ctx, "start", container(victim)); err != nil {
				r.t.Fatal(err)
			}
			r.alive(victim)
			r.waitVoters(3, victim.name+" added back to the Raft configuration")
			time.Sleep(3 * time.Second)
		}
	})
}

// TestOneWayPartitionLeader drops everything the leader sends to the
// other servers for 8 s while it still hears them, three times (a median
// of one election would be no median): they elect a new leader; the old
// one, whose answers never arrive, must not acknowledge a write or serve
// a stale read, and comes back as a follower.
func TestOneWayPartitionLeader(t *testing.T) {
	scenario(t, "one-way partition: leader sends lost", func(r *run) {
		r.cutLeaderRounds(3, func(victim node, others []node) error {
			for _, n := range others {
				if err := inNetns(r.ctx, victim, "iptables", "-I", "OUTPUT", "-d", n.ip, "-j", "DROP"); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// TestPartitionMinority cuts a follower and a client off from the rest
// (a minority of the servers, and half the clients) for 15 s: the majority
// side keeps a leader and goes on; the minority side's requests fail or
// wait, never answering from stale state; after healing, all is one again.
func TestPartitionMinority(t *testing.T) {
	scenario(t, "partition a follower and a client", func(r *run) {
		time.Sleep(3 * time.Second)
		leader := r.leader()
		follower := follower(leader)
		minority := []node{follower, nodes[4]} // c2
		var majority []node
		for _, n := range nodes {
			if n != follower && n != nodes[4] {
				majority = append(majority, n)
			}
		}
		for _, n := range minority {
			if err := partition(r.ctx, n, majority...); err != nil {
				r.t.Fatal(err)
			}
		}
		time.Sleep(15 * time.Second)
		for _, n := range minority {
			if err := heal(r.ctx, n); err != nil {
				r.t.Fatal(err)
			}
		}
		for _, n := range minority {
			r.alive(n)
		}
		if now := r.leader(); now != leader {
			r.t.Logf("the leader moved from %s to %s though it kept its majority", leader.name, now.name)
		}
		time.Sleep(3 * time.Second)
	})
}
