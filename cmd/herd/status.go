package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

// clusterStatus is what "herd status -o json" prints: the API objects the
// summary is made of.
type clusterStatus struct {
	Self    *api.AgentSelf
	Members []api.Member
	Raft    *api.RaftConfiguration
	// Nodes, Services, Replicas and Events (the last few) complete the
	// picture of the cluster.
	Nodes    []*api.Node         `json:",omitempty"`
	Services []*api.ServiceEntry `json:",omitempty"`
	Replicas []*api.Replica      `json:",omitempty"`
	Events   []*api.Event        `json:",omitempty"`
	// Errors lists the parts that could not be read.
	Errors []string `json:",omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a one-screen summary of the agent and its cluster",
		Long: `Show a one-screen summary: the agent's name and role, the Raft leader, how
many Raft peers there are, how many members are alive, failed or left, the
cluster ID and the agent's Raft indexes, how many nodes are ready, how many
replicas run and are healthy, which services run below their replica count,
and the last few events.

Whatever can be read is shown; if a part cannot be read, status says so and
exits 1.

Examples:
  herd status
  herd status -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			self, err := c.Self(ctx)
			if err != nil {
				return err
			}
			st := clusterStatus{Self: self, Members: []api.Member{}}
			if members, err := c.Members(ctx); err != nil {
				st.Errors = append(st.Errors, "members: "+err.Error())
			} else if members != nil {
				st.Members = members
			}
			if cfg, err := c.RaftConfiguration(ctx); err != nil {
				st.Errors = append(st.Errors, "raft configuration: "+err.Error())
			} else {
				st.Raft = cfg
			}
			if st.Nodes, _, err = c.Nodes(ctx, nil); err != nil {
				st.Errors = append(st.Errors, "nodes: "+err.Error())
			}
			if st.Services, _, err = c.ServiceList(ctx, nil); err != nil {
				st.Errors = append(st.Errors, "services: "+err.Error())
			}
			if st.Replicas, _, err = c.Replicas(ctx, "", "", nil); err != nil {
				st.Errors = append(st.Errors, "replicas: "+err.Error())
			}
			if evs, _, err := c.Events(ctx, 0, nil, nil); err != nil {
				st.Errors = append(st.Errors, "events: "+err.Error())
			} else if len(evs) > 0 {
				st.Events = evs[max(0, len(evs)-statusEvents):]
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				err = printOut(w, *out, st)
			} else {
				err = printStatus(cmd, &st)
			}
			if err != nil {
				return err
			}
			if len(st.Errors) > 0 {
				return errors.New("status is incomplete: " + strings.Join(st.Errors, "; "))
			}
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func printStatus(cmd *cobra.Command, st *clusterStatus) error {
	self := st.Self
	t := newTable(cmd.OutOrStdout())
	agent := fmt.Sprintf("%s (%s", self.Name, self.Role)
	if self.Zone != "" {
		agent += ", zone " + self.Zone
	}
	t.row("Agent:", agent+")")
	t.row("Version:", self.Version)
	t.row("API:", self.APIAddr)

	leader := self.Leader
	if leader == "" && st.Raft != nil {
		// Client agents do not run Raft; the configuration says who leads.
		for _, s := range st.Raft.Servers {
			if s.Leader {
				leader = s.Node
			}
		}
	}
	if leader == "" {
		leader = "none (no leader elected)"
	}
	t.row("Leader:", leader)

	peers := "unknown"
	if st.Raft != nil {
		voters := 0
		for _, s := range st.Raft.Servers {
			if s.Voter {
				voters++
			}
		}
		peers = fmt.Sprintf("%d (%d voters)", len(st.Raft.Servers), voters)
	}
	t.row("Raft peers:", peers)

	counts := map[string]int{}
	for _, m := range st.Members {
		counts[m.Status]++
	}
	members := fmt.Sprintf("%d alive, %d failed, %d left", counts[api.MemberAlive], counts[api.MemberFailed], counts[api.MemberLeft])
	var other []string
	for s, n := range counts {
		if s != api.MemberAlive && s != api.MemberFailed && s != api.MemberLeft {
			other = append(other, fmt.Sprintf("%d %s", n, s))
		}
	}
	sort.Strings(other)
	if len(other) > 0 {
		members += ", " + strings.Join(other, ", ")
	}
	t.row("Members:", members)
	t.row("Cluster ID:", self.ClusterID)

	raft := "- (client agent: no local Raft)"
	if self.Raft != nil {
		var parts []string
		for _, k := range []string{"state", "term", "last_log_index", "commit_index", "applied_index", "last_contact"} {
			if v, ok := self.Raft[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
		raft = strings.Join(parts, " ")
	}
	t.row("Raft:", raft)

	nodes := map[string]int{}
	for _, n := range st.Nodes {
		nodes[n.Status]++
	}
	t.row("Nodes:", fmt.Sprintf("%d ready, %d down (of %d that run replicas)", nodes["ready"], nodes["down"], len(st.Nodes)))
	running, healthy := 0, 0
	healthyOf := map[string]int{}
	for _, r := range st.Replicas {
		if r.State == api.ReplicaRunning {
			running++
			if r.Health == api.HealthHealthy {
				healthy++
				healthyOf[r.Service]++
			}
		}
	}
	t.row("Replicas:", fmt.Sprintf("%d running (%d healthy) of %d", running, healthy, len(st.Replicas)))
	full, static := 0, 0
	var degraded []string
	for _, s := range st.Services {
		switch {
		case s.Run == nil:
			static++
		case s.Run.Replicas == nil || healthyOf[s.Name] >= *s.Run.Replicas:
			full++
		default:
			degraded = append(degraded, fmt.Sprintf("%s %d/%d healthy", s.Name, healthyOf[s.Name], *s.Run.Replicas))
		}
	}
	svc := fmt.Sprintf("%d: %d run by herd at full strength, %d with static backends", len(st.Services), full, static)
	if len(degraded) > 0 {
		svc += fmt.Sprintf("; degraded: %s", strings.Join(degraded, ", "))
	}
	t.row("Services:", svc)
	for i, ev := range st.Events {
		label := " " // a blank cell ("" prints as "-")
		if i == 0 {
			label = "Recent:"
		}
		t.row(label, fmt.Sprintf("%s %s %s", ev.Time.Local().Format("15:04:05"), ev.Type, ev.Message))
	}
	for _, e := range st.Errors {
		t.row("Error:", e)
	}
	return t.flush()
}

// statusEvents is how many recent events status shows.
const statusEvents = 5
