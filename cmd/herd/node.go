package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

func newNodeCmd(g *globals) *cobra.Command {
	return groupCmd("node", "List, show, drain and fence the nodes that run replicas",
		`List and show the nodes that run replicas (every agent registers itself as
one), drain a node (its replicas move to other nodes) or make it ineligible
for new replicas.

Examples:
  herd node ls
  herd node show client1
  herd node drain client1
  herd node drain client1 --disable
  herd node eligibility client1 --disable`,
		newNodeLsCmd(g), newNodeShowCmd(g), newNodeDrainCmd(g), newNodeEligibilityCmd(g))
}

func newNodeLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the nodes with their capacity and replicas",
		Long: `List the nodes, sorted by name: their status (ready, down or unknown),
whether they take new replicas (yes, no, or draining), zone, the CPU
(millicores) and memory (MiB) their replicas reserve out of what they offer,
how many replicas are placed on them to run, and the drivers they can use.

Examples:
  herd node ls
  herd node ls -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			nodes, _, err := c.Nodes(cmd.Context(), nil)
			if err != nil {
				return err
			}
			if nodes == nil {
				nodes = []*api.Node{}
			}
			sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, nodes)
			}
			rs, _, err := c.Replicas(cmd.Context(), "", "", nil)
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, r := range rs {
				if r.Desired == api.DesiredRun {
					count[r.Node]++
				}
			}
			t := newTable(w, "NAME", "STATUS", "ELIGIBLE", "ZONE", "CPU(m)", "MEMORY(MiB)", "REPLICAS", "DRIVERS")
			for _, n := range nodes {
				t.row(n.Name, n.Status, eligibility(n), n.Zone,
					fmt.Sprintf("%d/%d", n.Used.CPU, n.Resources.CPU),
					fmt.Sprintf("%d/%d", n.Used.MemoryMB, n.Resources.MemoryMB),
					strconv.Itoa(count[n.Name]), strings.Join(usableDrivers(n), ","))
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

// eligibility is a node's ELIGIBLE cell: draining, yes or no.
func eligibility(n *api.Node) string {
	switch {
	case n.Drain:
		return "draining"
	case n.Eligible:
		return "yes"
	}
	return "no"
}

// driverNames returns a node's driver names, exec and docker first.
func driverNames(n *api.Node) []string {
	names := make([]string, 0, len(n.Drivers))
	for name := range n.Drivers {
		names = append(names, name)
	}
	rank := func(s string) int {
		switch s {
		case api.DriverExec:
			return 0
		case api.DriverDocker:
			return 1
		}
		return 2
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return names
}

// usableDrivers returns the drivers a node can run replicas with.
func usableDrivers(n *api.Node) []string {
	var out []string
	for _, name := range driverNames(n) {
		if n.Drivers[name] == "" {
			out = append(out, name)
		}
	}
	return out
}

// nodeView is what "node show -o json" prints.
type nodeView struct {
	Node     *api.Node      `json:"node"`
	Replicas []*api.Replica `json:"replicas"`
}

func newNodeShowCmd(g *globals) *cobra.Command {
	var (
		out *outputFormat
		all bool
	)
	cmd := &cobra.Command{
		Use:   "show NODE",
		Short: "Show a node: capacity, drivers, labels and its replicas",
		Long: `Show everything known about a node: status, eligibility, address, zone and
labels, the resources it offers and what its replicas reserve, whether it
enforces those limits (cgroup v2), the range its replica ports come from,
each driver (with the reason when it cannot be used), and its replicas as
"herd ps" lists them (--all adds those being stopped).

Examples:
  herd node show client1
  herd node show client1 -o json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			n, err := getNode(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			rs, _, err := c.Replicas(cmd.Context(), "", n.Name, nil)
			if err != nil {
				return err
			}
			rs = visibleReplicas(rs, all)
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, nodeView{Node: n, Replicas: rs})
			}
			return printNode(w, n, rs, all, time.Now())
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list replicas being stopped")
	out = addOutputFlag(cmd)
	return cmd
}

// getNode reads a node, or fails naming it when there is none.
func getNode(ctx context.Context, c *api.Client, name string) (*api.Node, error) {
	n, err := c.Node(ctx, name)
	if api.IsNotFound(err) || (err == nil && n == nil) {
		return nil, fmt.Errorf("no node %q", name)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// printNode writes node show's table, then the node's replicas.
func printNode(w io.Writer, n *api.Node, rs []*api.Replica, desired bool, now time.Time) error {
	t := newTable(w, "FIELD", "VALUE")
	t.row("name", n.Name)
	status := n.Status
	if !n.StatusSince.IsZero() {
		status += " for " + age(now, n.StatusSince)
	}
	t.row("status", status)
	t.row("eligible", eligibility(n))
	t.row("address", n.Address)
	t.row("zone", n.Zone)
	labels := make([]string, 0, len(n.Labels))
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	t.row("labels", strings.Join(labels, ","))
	t.row("cpu", fmt.Sprintf("%d of %d millicores reserved", n.Used.CPU, n.Resources.CPU))
	t.row("memory", fmt.Sprintf("%d of %d MiB reserved", n.Used.MemoryMB, n.Resources.MemoryMB))
	if n.CgroupV2 {
		t.row("limits", "enforced (cgroup v2)")
	} else {
		t.row("limits", "not enforced (no cgroup v2)")
	}
	t.row("ports", fmt.Sprintf("%d-%d", n.Resources.PortMin, n.Resources.PortMax))
	for _, name := range driverNames(n) {
		v := "usable"
		if why := n.Drivers[name]; why != "" {
			v = "unusable: " + why
		}
		t.row("driver "+name, v)
	}
	t.row("modify index", strconv.FormatUint(n.ModifyIndex, 10))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(rs) == 0 {
		_, err := fmt.Fprintln(w, "(no replicas)")
		return err
	}
	return printReplicas(w, rs, desired, now)
}

func newNodeDrainCmd(g *globals) *cobra.Command {
	var disable bool
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move a node's replicas to other nodes (--disable ends the drain)",
		Long: `Drain a node: it takes no new replicas, and each of its replicas is replaced
by one on another eligible node, then stopped once the replacement is
healthy, so that the service keeps its count throughout. A replica for which
no other node has room keeps running where it is until one does.

--disable ends the drain: the node is eligible for new replicas again, and
the replicas still on it stay.

Examples:
  herd node drain client1
  herd node drain client1 --disable`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.NodeDrain(cmd.Context(), args[0], !disable); err != nil {
				return nodeError(args[0], err)
			}
			w := cmd.OutOrStdout()
			if disable {
				fmt.Fprintf(w, "node/%s drain ended: eligible for new replicas\n", args[0])
				return nil
			}
			fmt.Fprintf(w, "node/%s draining: its replicas move to other nodes\n", args[0])
			nodes, _, err := c.Nodes(cmd.Context(), nil)
			if err != nil {
				return nil // the drain is done; the hint is a nicety
			}
			for _, n := range nodes {
				if n.Name != args[0] && n.Status == api.NodeReady && n.Eligible && !n.Drain {
					return nil
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "note: no other node is ready and eligible: the replicas of %s keep running there until one is\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&disable, "disable", false, "end the drain: make the node eligible again")
	return cmd
}

func newNodeEligibilityCmd(g *globals) *cobra.Command {
	var enable, disable bool
	cmd := &cobra.Command{
		Use:     "eligibility NODE --enable|--disable",
		Aliases: []string{"eligible"},
		Short:   "Let a node take new replicas, or keep new ones off it",
		Long: `Make a node eligible (--enable) or ineligible (--disable) for new replicas.
An ineligible node keeps the replicas it runs; none are added to it. To move
its replicas away as well, use "herd node drain". Exactly one of --enable
and --disable is required.

Examples:
  herd node eligibility client1 --disable
  herd node eligibility client1 --enable`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if enable == disable {
				return usagef("give exactly one of --enable and --disable")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.NodeEligibility(cmd.Context(), args[0], enable); err != nil {
				return nodeError(args[0], err)
			}
			if enable {
				fmt.Fprintf(cmd.OutOrStdout(), "node/%s eligible for new replicas\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "node/%s ineligible: it keeps its replicas and gets no new ones\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&enable, "enable", false, "let the node take new replicas")
	cmd.Flags().BoolVar(&disable, "disable", false, "place no new replicas on the node")
	return cmd
}

// nodeError names the node in a "not found" answer.
func nodeError(name string, err error) error {
	if api.IsNotFound(err) {
		return fmt.Errorf("no node %q", name)
	}
	return err
}
