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
cluster ID and the agent's Raft indexes.

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
			w := cmd.OutOrStdout()
			if *out == outputJSON {
				err = printJSON(w, st)
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
	for _, e := range st.Errors {
		t.row("Error:", e)
	}
	return t.flush()
}
