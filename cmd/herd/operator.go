package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

func newOperatorCmd(g *globals) *cobra.Command {
	raft := groupCmd("raft", "Inspect the Raft cluster of the servers",
		`Inspect the Raft configuration that the servers replicate.

Example:
  herd operator raft peers`,
		newRaftPeersCmd(g))
	return groupCmd("operator", "Operator tools for the cluster",
		`Operator tools that look at the cluster's internals.

Example:
  herd operator raft peers`,
		raft)
}

func newRaftPeersCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the servers in the Raft configuration",
		Long: `List the servers in the Raft configuration, which one leads and which vote.
With -o json it prints the whole configuration, including its Raft index.

Examples:
  herd operator raft peers
  herd operator raft peers -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cfg, err := c.RaftConfiguration(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if *out == outputJSON {
				return printJSON(w, cfg)
			}
			t := newTable(w, "NODE", "ADDRESS", "LEADER", "VOTER")
			for _, s := range cfg.Servers {
				t.row(s.Node, s.Address, strconv.FormatBool(s.Leader), strconv.FormatBool(s.Voter))
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}
