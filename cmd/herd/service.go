package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

func newApplyCmd(g *globals) *cobra.Command {
	var (
		files   []string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update cluster objects from YAML files",
		Long: `Create or update the objects described in YAML files (several documents may
be separated by "---"; each has a "kind"; today the kind is "service"). Every
file is read and checked first: if any object is invalid nothing is applied,
and the error names the document, line and field. Objects are then applied in
order; applying an object that exists replaces it. "-f -" reads standard input.

For a service with a run section (herd runs its replicas), apply then
follows what it started, printing each change of a replica of the new
version ("web: replica web-1a2b3c4d healthy"): it returns once the rollout
is complete, and exits 1 if the rollout fails, is reverted to the last good
version (update.auto_revert), or takes longer than --timeout. When the run
section changed only in ways that need no new replicas (replicas, update,
autoscale), apply waits for the replica count to be met, all healthy.
--wait=false returns as soon as the objects are applied; the rollout goes on
in the cluster either way, and "herd ps" shows its replicas.

Example (web.yaml):
  kind: service
  name: web
  routes:
    - host: example.com
      path_prefix: /
  backends:
    - address: 10.0.0.5:8080
    - address: 10.0.0.6:8080
  health_check:
    path: /healthz

  herd apply -f web.yaml

Example of a service herd runs (api.yaml):
  kind: service
  name: api
  routes:
    - host: api.example.com
  health_check:
    path: /health
  run:
    driver: exec
    command: /usr/local/bin/api-server
    args: ["--listen", "127.0.0.1:${PORT}"]
    replicas: 3
    update:
      auto_revert: true

  herd apply -f api.yaml
  herd apply -f api.yaml --wait=false`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return usagef("apply needs -f FILE")
			}
			if timeout <= 0 {
				return usagef("--timeout must be positive")
			}
			var objs []spec.Object
			var problems []error
			for _, f := range files {
				data, err := readInput(cmd.InOrStdin(), f)
				if err != nil {
					return err
				}
				o, err := spec.Parse(data)
				if err != nil {
					problems = append(problems, fmt.Errorf("%s: %w", f, err))
					continue
				}
				objs = append(objs, o...)
			}
			if len(problems) > 0 {
				return fmt.Errorf("nothing applied:\n%w", errors.Join(problems...))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var runs []appliedRun
			for _, o := range objs {
				if o.VIP != nil {
					if _, err := c.VIPPut(cmd.Context(), o.VIP); err != nil {
						return fmt.Errorf("vip %q: %w", o.VIP.Name, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "vip/%s applied\n", o.VIP.Name)
					continue
				}
				idx, err := c.ServicePut(cmd.Context(), o.Service)
				if err != nil {
					return fmt.Errorf("service %q: %w", o.Service.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "service/%s applied\n", o.Service.Name)
				if o.Service.Run != nil {
					runs = append(runs, appliedRun{name: o.Service.Name, index: idx})
				}
			}
			if !wait || len(runs) == 0 {
				return nil
			}
			return waitApplied(cmd, c, runs, timeout)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "YAML file to apply (repeatable; - for standard input)")
	cmd.Flags().BoolVar(&wait, "wait", true, "for services with a run section, follow the rollout until it completes")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the rollouts")
	return cmd
}

// appliedRun is a service with a run section that apply wrote at index.
type appliedRun struct {
	name  string
	index uint64
}

// waitApplied follows what apply started for each service with a run
// section: the rollout of its new run version, or, when the run version
// did not change (only the replica count, say), the count being met. It
// follows one service after the other within one timeout, and fails if
// any of them fails.
func waitApplied(cmd *cobra.Command, c *api.Client, runs []appliedRun, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := cmd.OutOrStdout()
	var errs []error
	for _, a := range runs {
		err := waitApply(ctx, c, w, a)
		if err == nil {
			continue
		}
		err = timeoutError(err, timeout)
		if ctx.Err() != nil {
			// Out of time or interrupted: the others cannot be waited for.
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitApply follows one applied service with a run section.
func waitApply(ctx context.Context, c *api.Client, w io.Writer, a appliedRun) error {
	e, _, err := c.ServiceGet(ctx, a.name, nil)
	if err != nil {
		return fmt.Errorf("reading service %s: %w", a.name, err)
	}
	switch {
	case e == nil:
		return fmt.Errorf("service %s was removed after it was applied", a.name)
	case e.RunVersion == a.index, e.Rollout != nil && e.Rollout.RevertedFrom == a.index:
		// This apply started a rollout (which may have ended already).
		fmt.Fprintf(w, "%s: rolling out run version %d\n", a.name, a.index)
		return waitRollout(ctx, c, w, a.name, a.index)
	case e.RunVersion < a.index && e.Run != nil:
		// Same replicas as before: only their number may have changed.
		return waitReplicas(ctx, c, w, a.name)
	}
	return fmt.Errorf("service %s changed again after this apply (now at run version %d): not following it", a.name, e.RunVersion)
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return data, nil
}

func newServiceCmd(g *globals) *cobra.Command {
	return groupCmd("service", "List, show and remove load-balanced services",
		`List, show and remove the services the gateways route to. Services are
created and changed with "herd apply -f".

Examples:
  herd service ls
  herd service show web
  herd service rm web`,
		newServiceLsCmd(g), newServiceShowCmd(g), newServiceRmCmd(g))
}

func newServiceLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List services",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, _, err := c.ServiceList(cmd.Context(), nil)
			if err != nil {
				return err
			}
			if list == nil {
				list = []*api.ServiceEntry{}
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, list)
			}
			t := newTable(w, "NAME", "PROTOCOL", "ROUTES", "BACKENDS", "ALGORITHM")
			for _, e := range list {
				s := spec.Defaults(e.Service)
				t.row(s.Name, s.Protocol, routesString(s.Routes), strconv.Itoa(len(s.Backends)), s.Algorithm)
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func routesString(rs []api.Route) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.Port != 0 {
			parts = append(parts, ":"+strconv.Itoa(r.Port))
			continue
		}
		host := r.Host
		if host == "" {
			host = "*"
		}
		parts = append(parts, host+r.PathPrefix)
	}
	return strings.Join(parts, ",")
}

func newServiceShowCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a service and its backends as this agent's gateway sees them",
		Long: `Show a service's settings (defaults filled in) and every backend with its
health, ejection state, weight, in-flight requests and request rate as the
gateway of the agent at --address sees them. Health is per gateway: other
agents may see a backend differently.

Examples:
  herd service show web
  herd service show web -o json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			e, _, err := c.ServiceGet(cmd.Context(), args[0], nil)
			if err != nil {
				return err
			}
			if e == nil {
				return fmt.Errorf("no service %q", args[0])
			}
			var gw *api.GatewayService
			gws, gerr := c.GatewayServices(cmd.Context())
			for i := range gws {
				if gws[i].Name == e.Name {
					gw = &gws[i]
				}
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, struct {
					Service *api.ServiceEntry   `json:"service"`
					Gateway *api.GatewayService `json:"gateway,omitempty"`
				}{e, gw})
			}
			s := spec.Defaults(e.Service)
			t := newTable(w, "FIELD", "VALUE")
			t.row("name", s.Name)
			t.row("protocol", s.Protocol)
			t.row("routes", routesString(s.Routes))
			t.row("algorithm", s.Algorithm)
			t.row("retry", fmt.Sprintf("attempts %d, budget %d%%, on %s", s.Retry.Attempts, s.Retry.BudgetPercent, strings.Join(s.Retry.On, ",")))
			t.row("timeouts", fmt.Sprintf("connect %s, request %s, idle %s", s.Timeouts.Connect, s.Timeouts.Request, s.Timeouts.Idle))
			if s.HealthCheck != nil {
				t.row("health check", fmt.Sprintf("%s %s every %s, rise %d fall %d", s.HealthCheck.Type, s.HealthCheck.Path, s.HealthCheck.Interval, s.HealthCheck.Rise, s.HealthCheck.Fall))
			} else {
				t.row("health check", "none")
			}
			t.row("modify index", strconv.FormatUint(e.ModifyIndex, 10))
			if gw != nil && gw.Panic {
				t.row("PANIC", "too few healthy backends: routing to all of them")
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if gw == nil {
				reason := "this agent runs no gateway"
				if gerr != nil {
					reason = gerr.Error()
				}
				bt := newTable(w, "BACKEND", "WEIGHT", "ZONE", "DRAIN")
				for _, b := range s.Backends {
					bt.row(b.Address, strconv.Itoa(b.Weight), b.Zone, strconv.FormatBool(b.Drain))
				}
				if err := bt.flush(); err != nil {
					return err
				}
				fmt.Fprintf(w, "\n(no live health: %s)\n", reason)
				return nil
			}
			bt := newTable(w, "BACKEND", "HEALTH", "WEIGHT", "ZONE", "IN-FLIGHT", "REQ/S", "REQUESTS", "EJECTIONS", "LAST ERROR")
			for _, b := range gw.Backends {
				bt.row(b.Address, b.Health, strconv.Itoa(b.Weight), b.Zone, strconv.FormatInt(b.InFlight, 10),
					strconv.FormatFloat(b.RatePerSecond, 'f', 1, 64), strconv.FormatUint(b.Requests, 10), strconv.Itoa(b.Ejections), b.LastError)
			}
			return bt.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newServiceRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a service (its backends are drained)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.ServiceDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service/%s removed\n", args[0])
			return nil
		},
	}
}

func newBackendCmd(g *globals) *cobra.Command {
	action := func(drain bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.BackendDrain(cmd.Context(), args[0], args[1], drain); err != nil {
				return err
			}
			verb := "enabled"
			if drain {
				verb = "draining"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service/%s backend %s %s\n", args[0], args[1], verb)
			return nil
		}
	}
	return groupCmd("backend", "Drain or re-enable one backend of a service",
		`Take one backend of a service out of rotation on every gateway ("drain":
no new requests; requests in flight finish) or put it back ("enable").

Examples:
  herd backend drain web 10.0.0.5:8080
  herd backend enable web 10.0.0.5:8080`,
		&cobra.Command{Use: "drain SERVICE ADDRESS", Short: "Stop sending new requests to a backend", Args: usageArgs(cobra.ExactArgs(2)), RunE: action(true)},
		&cobra.Command{Use: "enable SERVICE ADDRESS", Short: "Send requests to a drained backend again", Args: usageArgs(cobra.ExactArgs(2)), RunE: action(false)},
	)
}
