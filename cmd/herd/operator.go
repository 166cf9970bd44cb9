package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newOperatorCmd(g *globals) *cobra.Command {
	raft := groupCmd("raft", "Inspect the Raft cluster of the servers",
		`Inspect the Raft configuration that the servers replicate.

Example:
  herd operator raft peers`,
		newRaftPeersCmd(g))
	keyring := groupCmd("keyring", "Rotate the gossip encryption key",
		`Gossip between agents is encrypted (AES-GCM) with a cluster-wide key. "rotate"
makes a new primary key: every agent installs it within seconds and sends
with it, while the previous key is still accepted until the next rotation.
"ls" shows the keys' fingerprints (never the keys).

Examples:
  herd operator keyring rotate
  herd operator keyring ls`,
		newKeyringRotateCmd(g), newKeyringLsCmd(g))
	return groupCmd("operator", "Operator tools for the cluster",
		`Operator tools that look at the cluster's internals.

Examples:
  herd operator raft peers
  herd operator keyring rotate`,
		raft, keyring)
}

func newKeyringRotateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Make a new primary gossip key",
		Long: `Make a new primary gossip key; the previous primary stays installed until the
next rotation, so members that have not switched yet are still understood.
Needs operator write.

Example:
  herd operator keyring rotate`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			idx, err := c.KeyringRotate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gossip key rotated (index %d); agents install it within seconds\n", idx)
			return nil
		},
	}
}

func newKeyringLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the gossip keys' fingerprints, the primary first",
		Long: `List the fingerprints (the first 8 bytes of each key's SHA-256) of the gossip
keys, the primary first. The keys themselves are never printed. Needs
operator write.

Example:
  herd operator keyring ls`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ring, err := c.Keyring(cmd.Context(), nil)
			if err != nil {
				return err
			}
			t := newTable(cmd.OutOrStdout(), "FINGERPRINT", "PRIMARY")
			for i, k := range ring.Keys {
				raw, _ := base64.StdEncoding.DecodeString(k)
				sum := sha256.Sum256(raw)
				t.row(hex.EncodeToString(sum[:8]), strconv.FormatBool(i == 0))
			}
			return t.flush()
		},
	}
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
			if *out != outputTable {
				return printOut(w, *out, cfg)
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
