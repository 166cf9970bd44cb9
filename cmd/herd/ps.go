package main

import (
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

func newPsCmd(g *globals) *cobra.Command {
	var (
		out  *outputFormat
		node string
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "ps [SERVICE]",
		Short: "List the replicas herd runs, of every service or of one",
		Long: `List the replicas of the services that have a run section, one row each:
where it runs, its state and health as its node reports them, restarts,
age (since it last started, or since it was placed if it has not started),
its ports, the run version it runs and its last error (shortened; -o json
shows it whole). Rows are sorted by service, then replica ID.

Only replicas meant to run are listed; --all adds those being stopped
(scaled down, replaced by a new version, or moved off a draining node)
with a DESIRED column.

Examples:
  herd ps
  herd ps web
  herd ps --node client1 --all
  herd ps web -o json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rs, _, err := c.Replicas(cmd.Context(), service, node, nil)
			if err != nil {
				return err
			}
			if len(rs) == 0 && service != "" {
				// An empty list does not say whether the service exists.
				e, _, err := c.ServiceGet(cmd.Context(), service, nil)
				if err != nil {
					return err
				}
				if e == nil {
					return fmt.Errorf("no service %q", service)
				}
			}
			rs = visibleReplicas(rs, all)
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, rs)
			}
			return printReplicas(w, rs, all, time.Now())
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "only the replicas placed on this node")
	cmd.Flags().BoolVar(&all, "all", false, "also list replicas being stopped")
	out = addOutputFlag(cmd)
	return cmd
}

// visibleReplicas returns the replicas meant to run (all of them with
// all), sorted by service then ID, never nil so that JSON shows [].
func visibleReplicas(rs []*api.Replica, all bool) []*api.Replica {
	out := []*api.Replica{}
	for _, r := range rs {
		if all || r.Desired == api.DesiredRun {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// maxErrorShown is how much of a replica's error a table row shows.
const maxErrorShown = 60

// printReplicas writes the replica table of herd ps (with a DESIRED
// column when desired is set).
func printReplicas(w io.Writer, rs []*api.Replica, desired bool, now time.Time) error {
	headers := []string{"ID", "SERVICE", "NODE"}
	if desired {
		headers = append(headers, "DESIRED")
	}
	headers = append(headers, "STATE", "HEALTH", "RESTARTS", "AGE", "PORTS", "VERSION", "ERROR")
	t := newTable(w, headers...)
	for _, r := range rs {
		cells := []string{r.ID, r.Service, r.Node}
		if desired {
			cells = append(cells, r.Desired)
		}
		state := r.State
		if r.CrashLoop {
			state += "(crash-loop)"
		}
		since := r.StartedAt
		if since.IsZero() {
			since = r.CreateTime
		}
		cells = append(cells, state, r.Health, strconv.Itoa(r.Restarts), age(now, since),
			portsString(r), strconv.FormatUint(r.Version, 10), shorten(r.Error, maxErrorShown))
		t.row(cells...)
	}
	return t.flush()
}

// age is how long ago t was, in the largest whole unit: "45s", "3m",
// "2h", "5d". A zero t is "-".
func age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// portsString lists a replica's ports as name=port, in the order of its
// run section (the first is the one the gateway routes to), then any
// others by name.
func portsString(r *api.Replica) string {
	var names []string
	if r.Run != nil {
		for _, p := range r.Run.Ports {
			if _, ok := r.Ports[p.Name]; ok && !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
	}
	var rest []string
	for name := range r.Ports {
		if !slices.Contains(names, name) {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	parts := make([]string, 0, len(r.Ports))
	for _, name := range append(names, rest...) {
		parts = append(parts, name+"="+strconv.Itoa(r.Ports[name]))
	}
	return strings.Join(parts, ",")
}

// shorten cuts s to at most n runes, marking the cut with "...".
func shorten(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-3]) + "..."
}
