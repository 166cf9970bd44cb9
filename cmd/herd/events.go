package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

func newEventsCmd(g *globals) *cobra.Command {
	var (
		out    *outputFormat
		follow bool
		types  []string
		index  uint64
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the cluster's events, or follow them as they happen",
		Long: `Show the cluster's recent events (the state keeps the last 4096): members that
joined, failed or left, leader elections, replicas placed, started, failed, lost
or moved, rollouts started, completed, failed or reverted, join and API tokens
created or revoked. Each has a cluster-wide index; --index N shows those after
N. -f keeps following new ones until interrupted. Needs operator read.

Event types: ` + strings.Join(api.EventTypes, ", ") + `

Examples:
  herd events
  herd events -f --type member.failed --type replica.lost
  herd events --index 120 -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range types {
				if !slices.Contains(api.EventTypes, t) {
					return usagef("--type %q is not an event type (known: %s)", t, strings.Join(api.EventTypes, ", "))
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			print := func(ev *api.Event) error {
				if *out != outputTable {
					return printJSONLine(w, ev)
				}
				_, err := fmt.Fprintf(w, "%-6d %s  %-17s %-20s %s\n", ev.Index, ev.Time.Local().Format("15:04:05.000"), ev.Type, ev.Subject, ev.Message)
				return err
			}
			if !follow {
				evs, _, err := c.Events(cmd.Context(), index, types, nil)
				if err != nil {
					return err
				}
				if *out != outputTable {
					if evs == nil {
						evs = []*api.Event{}
					}
					return printOut(w, *out, evs)
				}
				for _, ev := range evs {
					if err := print(ev); err != nil {
						return err
					}
				}
				return nil
			}
			err = c.FollowEvents(cmd.Context(), index, types, print)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only events of this type (repeatable)")
	cmd.Flags().Uint64Var(&index, "index", 0, "only events after this index")
	out = addOutputFlag(cmd)
	return cmd
}

// printJSONLine writes v as one line of JSON.
func printJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}
