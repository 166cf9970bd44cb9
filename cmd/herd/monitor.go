package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func newMonitorCmd(g *globals) *cobra.Command {
	var (
		level  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Stream an agent's logs",
		Long: `Stream the log records of the agent at --address as they are written, at
--level and above (debug shows more than the agent itself logs), until
interrupted. Lines the reader cannot keep up with are dropped, and the stream
says how many. Needs operator read.

Examples:
  herd monitor
  herd monitor --level debug
  herd --address 10.0.0.12:7700 monitor --json | jq .`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch level {
			case "debug", "info", "warn", "error":
			default:
				return usagef("--level must be debug, info, warn or error, not %q", level)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			err = c.Monitor(cmd.Context(), level, func(line []byte) error {
				if asJSON {
					_, err := fmt.Fprintf(w, "%s\n", line)
					return err
				}
				return printLogLine(w, line)
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&level, "level", "info", "debug, info, warn or error")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as JSON lines, as they arrive")
	return cmd
}

// printLogLine prints one JSON log record as "time LEVEL msg key=value...".
func printLogLine(w io.Writer, line []byte) error {
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		_, err := fmt.Fprintf(w, "%s\n", line)
		return err
	}
	var b strings.Builder
	ts, _ := rec["time"].(string)
	if len(ts) >= 23 && strings.Contains(ts, "T") {
		ts = ts[strings.Index(ts, "T")+1 : strings.Index(ts, "T")+13]
	}
	fmt.Fprintf(&b, "%s %-5v %v", ts, rec["level"], rec["msg"])
	keys := make([]string, 0, len(rec))
	for k := range rec {
		if k != "time" && k != "level" && k != "msg" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(rec[k])
		if strings.ContainsAny(v, " \t\"") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}
