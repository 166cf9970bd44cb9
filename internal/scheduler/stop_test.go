package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

func TestPickStop(t *testing.T) {
	nodes := []*api.Node{
		mkNode("a", inZone("z1")), mkNode("b", inZone("z1")),
		mkNode("c", inZone("z2")), mkNode("d", inZone("z2")),
	}
	with := func(r *api.Replica, f func(*api.Replica)) *api.Replica { f(r); return r }
	at := func(idx uint64) func(*api.Replica) { return func(r *api.Replica) { r.CreateIndex = idx } }
	tests := []struct {
		name     string
		other    []*api.Replica // load on the nodes, not candidates
		replicas []*api.Replica
		run      *api.Run
		n        int
		want     []string
	}{
		{
			name: "unhealthy before healthy",
			replicas: []*api.Replica{
				rep("w-1", "web", "a", 1, 1),
				with(rep("w-2", "web", "b", 1, 1), func(r *api.Replica) { r.Health = api.HealthUnhealthy }),
				with(rep("w-3", "web", "c", 1, 1), func(r *api.Replica) { r.State = api.ReplicaStarting }),
				with(rep("w-4", "web", "d", 1, 1), func(r *api.Replica) { r.State = api.ReplicaBackoff }),
				with(rep("w-5", "web", "", 1, 1), func(r *api.Replica) { r.State = api.ReplicaPending }),
				with(rep("w-6", "web", "a", 1, 1), func(r *api.Replica) { r.CrashLoop = true }),
			},
			n:    5,
			want: []string{"w-5", "w-6", "w-4", "w-3", "w-2"},
		},
		{
			name:     "most loaded node",
			other:    []*api.Replica{rep("o-1", "other", "c", 2000, 1000), rep("o-2", "other", "b", 1000, 500)},
			replicas: []*api.Replica{rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "b", 1, 1), rep("w-3", "web", "c", 1, 1)},
			n:        2,
			want:     []string{"w-3", "w-2"},
		},
		{
			name:  "node with most replicas of the service before load",
			other: []*api.Replica{rep("o-1", "other", "c", 3000, 3000)},
			replicas: []*api.Replica{
				rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "a", 1, 1), rep("w-3", "web", "a", 1, 1),
				rep("w-4", "web", "b", 1, 1), rep("w-5", "web", "b", 1, 1), rep("w-6", "web", "c", 1, 1),
			},
			n: 3,
			// a has 3, then a and b have 2 each and a is more loaded (it
			// still holds w-3), then b has the most: c, the most loaded
			// node, keeps its only replica.
			want: []string{"w-3", "w-2", "w-5"},
		},
		{
			name: "newest first",
			replicas: []*api.Replica{
				with(rep("w-1", "web", "a", 1, 1), at(30)), with(rep("w-2", "web", "a", 1, 1), at(10)),
				with(rep("w-3", "web", "a", 1, 1), at(20)),
				with(rep("w-4", "web", "a", 1, 1), func(r *api.Replica) {
					r.CreateIndex = 20
					r.CreateTime = time.Unix(100, 0)
				}),
			},
			n:    3,
			want: []string{"w-1", "w-4", "w-3"},
		},
		{
			name: "spread zone keeps zones even",
			replicas: []*api.Replica{
				rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "b", 1, 1), rep("w-3", "web", "a", 1, 1),
				rep("w-4", "web", "c", 1, 1),
			},
			run: execRun(0, 0, zoneSpread),
			n:   2,
			// z1 has 3 and z2 1: both come from z1, first from a (2 of
			// them), then from a again, more loaded than b.
			want: []string{"w-3", "w-1"},
		},
		{
			name:     "spread zone before node load",
			other:    []*api.Replica{rep("o-1", "other", "c", 3000, 3000)},
			replicas: []*api.Replica{rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "b", 1, 1), rep("w-3", "web", "c", 1, 1)},
			run:      execRun(0, 0, zoneSpread),
			n:        1,
			want:     []string{"w-2"},
		},
		{
			name:     "without spread zone the loaded node goes first",
			other:    []*api.Replica{rep("o-1", "other", "c", 3000, 3000)},
			replicas: []*api.Replica{rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "b", 1, 1), rep("w-3", "web", "c", 1, 1)},
			run:      execRun(0, 0),
			n:        1,
			want:     []string{"w-3"},
		},
		{
			name:     "unknown node counts as full",
			other:    []*api.Replica{rep("o-1", "other", "a", 4000, 4096)},
			replicas: []*api.Replica{rep("w-1", "web", "a", 1, 1), rep("w-2", "web", "gone", 1, 1)},
			n:        1,
			want:     []string{"w-2"},
		},
		{
			name:     "n at least the count returns all",
			replicas: []*api.Replica{with(rep("w-1", "web", "a", 1, 1), at(1)), nil, with(rep("w-2", "web", "b", 1, 1), at(2))},
			n:        5,
			want:     []string{"w-2", "w-1"},
		},
		{name: "n zero", replicas: []*api.Replica{rep("w-1", "web", "a", 1, 1)}, n: 0, want: nil},
		{name: "none", n: 3, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(nodes, append(slices.Clone(tc.other), tc.replicas...))
			before, _ := c.Used("a")
			var got []string
			for _, r := range c.PickStop(tc.run, tc.replicas, tc.n) {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("PickStop = %v, want %v", got, tc.want)
			}
			if after, _ := c.Used("a"); after != before {
				t.Error("PickStop changed the accounting")
			}
			// Deterministic whatever the input order.
			rev := slices.Clone(tc.replicas)
			slices.Reverse(rev)
			var again []string
			for _, r := range c.PickStop(tc.run, rev, tc.n) {
				again = append(again, r.ID)
			}
			if !slices.Equal(again, got) {
				t.Errorf("reversed input: PickStop = %v, want %v", again, got)
			}
		})
	}
}
