package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/spec"
)

// maxScale is the most replicas "herd scale" sets.
const maxScale = 10000

func newScaleCmd(g *globals) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "scale SERVICE N",
		Short: "Set how many replicas of a service run",
		Long: `Set the number of replicas of a service that herd runs (its run section's
"replicas") to N, from 0 to 10000; 0 stops them all but keeps the service.
The rest of the service is written back unchanged, so scaling starts no
rollout. A service without a run section is refused.

With --wait, herd scale returns once exactly N replicas run and are healthy
(and those scaled away have stopped), printing each replica's changes, or
fails after --timeout.

Examples:
  herd scale web 3
  herd scale web 0
  herd scale web 5 --wait --timeout 1m`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 || n > maxScale {
				return usagef("N must be a number of replicas from 0 to %d, not %q", maxScale, args[1])
			}
			if timeout <= 0 {
				return usagef("--timeout must be positive")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			e, _, err := c.ServiceGet(ctx, name, nil)
			if err != nil {
				return err
			}
			if e == nil {
				return fmt.Errorf("no service %q", name)
			}
			if e.Run == nil {
				return fmt.Errorf("service %s has no run section: herd runs no replicas of it", name)
			}
			was := *spec.RunDefaults(e.Run).Replicas
			svc := e.Service
			svc.Kind = ""
			run := *e.Run
			run.Replicas = &n
			svc.Run = &run
			if _, err := c.ServicePut(ctx, &svc); err != nil {
				return fmt.Errorf("scaling %s: %w", name, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s scaled to %s (was %d)\n", name, plural(n, "replica"), was)
			if a := e.Run.Autoscale; a != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s autoscales between %d and %d replicas: the autoscaler may change this\n", name, a.Min, a.Max)
			}
			if !wait {
				return nil
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return timeoutError(waitReplicas(ctx, c, w, name), timeout)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until N replicas run and are healthy")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}
