package main

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

func newMembersCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the agents of the cluster as gossip sees them",
		Long: `List the agents of the cluster as the agent at --address sees them through
gossip, including failed and left ones, sorted by name.

Examples:
  herd members
  herd members -o json
  herd members --address http://10.0.0.2:7700`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			members, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if members == nil {
				members = []api.Member{}
			}
			sort.SliceStable(members, func(i, j int) bool { return members[i].Name < members[j].Name })
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, members)
			}
			t := newTable(w, "NAME", "STATUS", "ROLE", "ZONE", "ADDRESS", "API", "VERSION")
			for _, m := range members {
				t.row(m.Name, m.Status, m.Role, m.Zone, m.Addr, m.APIAddr, m.Version)
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}
