package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow  bool
		replica string
		stderr  bool
		tail    int
	)
	cmd := &cobra.Command{
		Use:   "logs REPLICA|SERVICE",
		Short: "Print the output of a replica",
		Long: `Print what a replica wrote to its standard output (or, with --stderr, its
standard error). The argument is a replica ID as "herd ps" shows it, or a
service: a service with one replica shows that one's logs; for a service
with several, --replica names one (its full ID or the part after the
service name).

The logs are read from the agent of the node that runs the replica, found
through the cluster's members; its API must be reachable from here.
--tail prints only the last lines; -f keeps printing new lines until
interrupted.

Examples:
  herd logs web-1a2b3c4d
  herd logs web --replica 1a2b3c4d --tail 50
  herd logs web -f
  herd logs web-1a2b3c4d --stderr`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail < 0 {
				return usagef("--tail must not be negative")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			r, err := findReplica(ctx, c, args[0], replica)
			if err != nil {
				return err
			}
			if r.Node == "" {
				return fmt.Errorf("replica %s is not placed on a node yet: %s", r.ID, r.Error)
			}
			nc, err := nodeClient(ctx, g, c, r.Node)
			if err != nil {
				return fmt.Errorf("logs of %s: %w", r.ID, err)
			}
			defer nc.Close()
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			body, err := nc.ReplicaLogs(ctx, r.ID, stream, tail, follow)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("logs of %s on %s: %w", r.ID, r.Node, err)
			}
			defer body.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), body); err != nil && ctx.Err() == nil {
				return fmt.Errorf("logs of %s on %s: %w", r.ID, r.Node, err)
			}
			// An interrupt is how -f ends.
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().StringVar(&replica, "replica", "", "the replica of SERVICE to show (ID, or the part after the service name)")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "show standard error instead of standard output")
	cmd.Flags().IntVar(&tail, "tail", 0, "print only the last N lines (0: all)")
	return cmd
}

// findReplica resolves logs' argument: a replica ID, or a service (with
// --replica when it has several replicas).
func findReplica(ctx context.Context, c *api.Client, arg, replica string) (*api.Replica, error) {
	rs, _, err := c.Replicas(ctx, arg, "", nil)
	if err != nil {
		return nil, err
	}
	if len(rs) > 0 || replica != "" {
		return pickReplica(ctx, c, arg, replica, rs)
	}
	// Not a service with replicas: a replica ID is "<service>-<hex>".
	if i := strings.LastIndexByte(arg, '-'); i > 0 {
		rs, _, err := c.Replicas(ctx, arg[:i], "", nil)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.ID == arg {
				return r, nil
			}
		}
	}
	e, _, err := c.ServiceGet(ctx, arg, nil)
	if err != nil {
		return nil, err
	}
	if e != nil {
		return nil, fmt.Errorf("service %s has no replicas", arg)
	}
	return nil, fmt.Errorf("no replica or service %q", arg)
}

// pickReplica chooses the replica of service whose logs to show: the one
// --replica names, else the only one meant to run (or the only one).
func pickReplica(ctx context.Context, c *api.Client, service, replica string, rs []*api.Replica) (*api.Replica, error) {
	if replica != "" {
		for _, r := range rs {
			if r.ID == replica || r.ID == service+"-"+replica {
				return r, nil
			}
		}
		if len(rs) == 0 {
			if e, _, err := c.ServiceGet(ctx, service, nil); err == nil && e == nil {
				return nil, fmt.Errorf("no service %q", service)
			}
		}
		return nil, fmt.Errorf("service %s has no replica %q (its replicas: %s)", service, replica, replicaIDs(rs))
	}
	running := visibleReplicas(rs, false)
	if len(running) == 0 {
		running = visibleReplicas(rs, true)
	}
	if len(running) == 1 {
		return running[0], nil
	}
	return nil, usagef("service %s has %d replicas: choose one with --replica: %s", service, len(running), replicaIDs(running))
}

func replicaIDs(rs []*api.Replica) string {
	if len(rs) == 0 {
		return "none"
	}
	ids := make([]string, 0, len(rs))
	for _, r := range visibleReplicas(rs, true) {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}

// nodeClient returns a client for the API of the agent named node, found
// among the members c's agent knows, with the same token and CA.
func nodeClient(ctx context.Context, g *globals, c *api.Client, node string) (*api.Client, error) {
	members, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("finding node %s: %w", node, err)
	}
	for _, m := range members {
		if m.Name != node {
			continue
		}
		if m.APIAddr == "" {
			return nil, fmt.Errorf("node %s announces no API address", node)
		}
		addr := m.APIAddr
		if strings.HasPrefix(c.Address(), "https://") {
			addr = "https://" + addr
		}
		// The node's certificate holds its name, whatever
		// --tls-server-name says about the first agent's.
		nc, err := api.NewClientConfig(api.Config{Address: addr, Token: g.token, CACert: g.caCert, TLSServerName: node})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
		return nc, nil
	}
	return nil, errors.New("node " + node + " is not among the cluster's members")
}
