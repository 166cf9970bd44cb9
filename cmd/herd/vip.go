package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

func newVIPCmd(g *globals) *cobra.Command {
	return groupCmd("vip", "List and remove floating IP addresses (VIPs)",
		`A VIP is a floating IP address the cluster keeps on exactly one eligible node
at a time, moving it when that node dies, is cut off or stops serving. Write one
with "herd apply -f vip.yaml":

  kind: vip
  name: front
  address: 10.0.0.100/24      # with its prefix length
  # interface: eth0           # default: the interface holding the node's address in that subnet
  nodes: [gw1, gw2, gw3]      # default: every node (that matches labels)
  # labels: {role: edge}
  priority: {gw1: 150}        # default 100; a free address goes to the highest
  preempt: false              # true: move back to a higher-priority node
  lease: 800ms                # the holder renews 4 times per lease

The holder's lease is kept by the Raft leader: another node may take the
address only a full lease after the holder's last renewal, and the holder
removes it by its own clock a quarter of a lease before that.

Examples:
  herd apply -f vip.yaml
  herd vip ls
  herd vip show front
  herd vip rm front`,
		newVIPLsCmd(g), newVIPShowCmd(g), newVIPRmCmd(g))
}

func newVIPLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the VIPs with their holder and last move",
		Long: `List the VIPs by name: address, holder, how long it has held the address,
lease, and the last move with its reason.

Examples:
  herd vip ls
  herd vip ls -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			vips, _, err := c.VIPList(cmd.Context(), nil)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				if vips == nil {
					vips = []*api.VIPEntry{}
				}
				return printOut(w, *out, vips)
			}
			t := newTable(w, "NAME", "ADDRESS", "HOLDER", "HELD FOR", "LEASE", "LAST MOVE")
			for _, v := range vips {
				holder, held := "-", "-"
				if v.Holder != "" {
					holder, held = v.Holder, time.Since(v.HolderSince).Round(time.Second).String()
				}
				t.row(v.Name, v.Address, holder, held, spec.VIPDefaults(v.VIP).Lease.D().String(), lastMove(v))
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

// lastMove describes a VIP's latest change of holder.
func lastMove(v *api.VIPEntry) string {
	if len(v.Moves) == 0 {
		return "-"
	}
	m := v.Moves[len(v.Moves)-1]
	return fmt.Sprintf("%s ago: %s → %s (%s)", time.Since(m.At).Round(time.Second), orDash(m.From), orDash(m.To), m.Reason)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newVIPShowCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one VIP: its spec, holder and recent moves",
		Long: `Show one VIP: its spec, its holder and its last moves with their reasons.

Example:
  herd vip show front`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			v, _, err := c.VIPGet(cmd.Context(), args[0], nil)
			if err != nil {
				return err
			}
			if v == nil {
				return fmt.Errorf("no vip %q", args[0])
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, v)
			}
			d := spec.VIPDefaults(v.VIP)
			fmt.Fprintf(w, "Name:       %s\nAddress:    %s\n", v.Name, v.Address)
			if v.Interface != "" {
				fmt.Fprintf(w, "Interface:  %s\n", v.Interface)
			}
			if len(v.Nodes) > 0 {
				fmt.Fprintf(w, "Nodes:      %v\n", v.Nodes)
			}
			if len(v.Labels) > 0 {
				fmt.Fprintf(w, "Labels:     %v\n", v.Labels)
			}
			fmt.Fprintf(w, "Preempt:    %v\nLease:      %s\nHolder:     %s\n", v.Preempt, d.Lease.D(), orDash(v.Holder))
			if len(v.Moves) > 0 {
				fmt.Fprintln(w, "Moves:")
				t := newTable(w, "  WHEN", "FROM", "TO", "REASON")
				for _, m := range v.Moves {
					t.row("  "+m.At.Local().Format(time.DateTime), orDash(m.From), orDash(m.To), m.Reason)
				}
				return t.flush()
			}
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newVIPRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a VIP",
		Long: `Remove a VIP from the cluster: its holder gives up the address.

Example:
  herd vip rm front`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.VIPDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vip/%s removed\n", args[0])
			return nil
		},
	}
}
