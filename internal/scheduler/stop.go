package scheduler

import (
	"math"
	"slices"

	"github.com/herd-cluster/herd/api"
)

// PickStop returns which n of a service's replicas to stop when it scales
// down, in the order chosen; all of them when n is at least their number,
// none when n <= 0. replicas are the candidates (the service's replicas
// that should run); run is the service's run section (nil is fine).
//
// It prefers, in order:
//  1. replicas that are not doing their job: waiting for a place, then
//     lost, failed, stopped, backing off or crash-looping, then pending or
//     starting, then running but unhealthy, and last running ones;
//  2. with spread "zone", replicas in the zone with the most candidates
//     left;
//  3. replicas on the node with the most candidates left, so that the
//     survivors stay spread;
//  4. replicas on the most loaded node (reserved fraction of CPU plus
//     memory; a node the Cluster does not know counts as full);
//  5. the newest replica (highest CreateIndex, then latest CreateTime,
//     then greatest ID).
//
// Steps 2 and 3 count the candidates not picked yet, so the choice is
// made one replica at a time. The Cluster is not changed: a replica told
// to stop holds its resources until it has stopped.
func (c *Cluster) PickStop(run *api.Run, replicas []*api.Replica, n int) []*api.Replica {
	if n <= 0 {
		return nil
	}
	zoneSpread := run != nil && run.Spread == "zone"
	type victim struct {
		r    *api.Replica
		rank int
		load int64
		node int // index into perNode
		zone int // index into perZone; the last one for unknown nodes
		age  int // 0 for the newest candidate
	}
	pool := make([]victim, 0, len(replicas))
	// Candidates left per node and per zone, indexed by small integers
	// rather than names: the comparisons below run n*m times.
	nodeKey := make(map[string]int)
	var perNode []int
	perZone := make([]int, len(c.zones)+1)
	for _, r := range replicas {
		if r == nil {
			continue
		}
		v := victim{r: r, rank: stopRank(r), load: math.MaxInt64, zone: len(c.zones)}
		if ni, ok := c.byName[r.Node]; ok {
			v.load = c.nodes[ni].usedPPM()
			v.zone = int(c.nodes[ni].zone)
		}
		k, ok := nodeKey[r.Node]
		if !ok {
			k = len(perNode)
			nodeKey[r.Node] = k
			perNode = append(perNode, 0)
		}
		v.node = k
		pool = append(pool, v)
		perNode[k]++
		perZone[v.zone]++
	}
	// Rank the ages once, so the comparisons below compare integers.
	slices.SortStableFunc(pool, func(a, b victim) int {
		switch {
		case newer(a.r, b.r):
			return -1
		case newer(b.r, a.r):
			return 1
		}
		return 0
	})
	for i := range pool {
		pool[i].age = i
	}
	// first reports whether a should be stopped before b.
	first := func(a, b *victim) bool {
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if zoneSpread {
			if za, zb := perZone[a.zone], perZone[b.zone]; za != zb {
				return za > zb
			}
		}
		if na, nb := perNode[a.node], perNode[b.node]; na != nb {
			return na > nb
		}
		if a.load != b.load {
			return a.load > b.load
		}
		return a.age < b.age
	}
	if n >= len(pool) {
		// Everything goes; order by the fixed criteria alone, in
		// O(m log m) rather than one scan per pick.
		slices.SortStableFunc(pool, func(a, b victim) int {
			switch {
			case first(&a, &b):
				return -1
			case first(&b, &a):
				return 1
			}
			return 0
		})
		out := make([]*api.Replica, len(pool))
		for i := range pool {
			out[i] = pool[i].r
		}
		return out
	}
	out := make([]*api.Replica, 0, n)
	for len(out) < n {
		best := 0
		for i := 1; i < len(pool); i++ {
			if first(&pool[i], &pool[best]) {
				best = i
			}
		}
		v := pool[best]
		out = append(out, v.r)
		perNode[v.node]--
		perZone[v.zone]--
		pool = slices.Delete(pool, best, best+1)
	}
	return out
}

// stopRank orders replicas by how little stopping them costs: lower is
// stopped first.
func stopRank(r *api.Replica) int {
	switch {
	case r.Node == "":
		return 0
	case r.CrashLoop:
		return 1
	}
	switch r.State {
	case api.ReplicaLost, api.ReplicaFailed, api.ReplicaStopped, api.ReplicaBackoff:
		return 1
	case api.ReplicaRunning:
		if r.Health == api.HealthUnhealthy {
			return 3
		}
		return 4
	}
	// pending, starting, or a state this code does not know.
	return 2
}

// newer reports whether a was created after b.
func newer(a, b *api.Replica) bool {
	if a.CreateIndex != b.CreateIndex {
		return a.CreateIndex > b.CreateIndex
	}
	if !a.CreateTime.Equal(b.CreateTime) {
		return a.CreateTime.After(b.CreateTime)
	}
	return a.ID > b.ID
}
