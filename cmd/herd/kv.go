package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

func newKVCmd(g *globals) *cobra.Command {
	return groupCmd("kv", "Read and write the replicated key-value store",
		`Read, write, list, delete and watch keys in the cluster's replicated
key-value store. Keys are paths such as "app/config/port"; values are bytes.

Examples:
  herd kv put app/port 8080
  herd kv get app/port
  herd kv ls app/
  herd kv watch app/port`,
		newKVGetCmd(g), newKVPutCmd(g), newKVDelCmd(g), newKVLsCmd(g), newKVWatchCmd(g))
}

func newKVGetCmd(g *globals) *cobra.Command {
	var (
		out      *outputFormat
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Long: `Print the value of a key followed by a newline. A missing key is an error
(exit 1). --detailed prints the key's fields instead; -o json prints the key
as the API returns it (the value in base64).

Examples:
  herd kv get app/port
  herd kv get --detailed app/port
  herd kv get -o json app/port`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			c, err := g.client()
			if err != nil {
				return err
			}
			pair, _, err := c.KVGet(cmd.Context(), key, nil)
			if err != nil {
				return err
			}
			if pair == nil {
				return fmt.Errorf("key not found: %s", key)
			}
			w := cmd.OutOrStdout()
			switch {
			case *out != outputTable:
				return printOut(w, *out, pair)
			case detailed:
				t := newTable(w)
				t.row("CreateIndex", strconv.FormatUint(pair.CreateIndex, 10))
				t.row("Flags", strconv.FormatUint(pair.Flags, 10))
				t.row("Key", pair.Key)
				t.row("LockIndex", strconv.FormatUint(pair.LockIndex, 10))
				t.row("ModifyIndex", strconv.FormatUint(pair.ModifyIndex, 10))
				t.row("Session", pair.Session)
				t.row("Value", displayValue(pair.Value))
				return t.flush()
			}
			_, err = fmt.Fprintf(w, "%s\n", pair.Value)
			return err
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed", false, "print the key's fields (indexes, flags, session) as a table")
	out = addOutputFlag(cmd)
	return cmd
}

func newKVPutCmd(g *globals) *cobra.Command {
	var (
		cas   uint64
		flags uint64
	)
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a value to a key",
		Long: `Write VALUE to KEY, creating the key if needed. VALUE "-" reads the value
from standard input. --cas N writes only if the key's ModifyIndex is still N
(0: only if the key does not exist yet); if it is not, nothing is written and
put exits 1.

Examples:
  herd kv put app/port 8080
  herd kv put app/config - < config.json
  herd kv put --cas 0 app/owner alice     # only if nobody claimed it yet
  herd kv put --cas 42 --flags 7 app/port 9090`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, value := args[0], []byte(args[1])
			if args[1] == "-" {
				var err error
				if value, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("reading the value from standard input: %w", err)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			opts := &api.WriteOptions{Flags: flags}
			if cmd.Flags().Changed("cas") {
				opts.CAS = &cas
			}
			ok, _, err := c.KVPut(cmd.Context(), key, value, opts)
			if err != nil {
				return err
			}
			if !ok {
				if cas == 0 {
					return fmt.Errorf("CAS failed: key %s already exists (--cas 0 writes only new keys); nothing written", key)
				}
				return fmt.Errorf("CAS failed: key %s is missing or its ModifyIndex is no longer %d; nothing written", key, cas)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Success! Data written to: %s\n", key)
			return err
		},
	}
	cmd.Flags().Uint64Var(&cas, "cas", 0, "write only if the key's ModifyIndex is N (0: only if the key does not exist)")
	cmd.Flags().Uint64Var(&flags, "flags", 0, "opaque unsigned integer stored with the value")
	return cmd
}

func newKVDelCmd(g *globals) *cobra.Command {
	var recurse bool
	cmd := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a key, or every key under a prefix",
		Long: `Delete KEY. Deleting a key that does not exist succeeds. With --recurse,
delete every key that starts with KEY (mind the trailing slash: "app" also
matches "apple"; "" with --recurse deletes everything).

Examples:
  herd kv del app/port
  herd kv del --recurse app/`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			c, err := g.client()
			if err != nil {
				return err
			}
			if _, err := c.KVDelete(cmd.Context(), key, recurse); err != nil {
				return err
			}
			if recurse {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Success! Deleted keys with prefix: %s\n", key)
			} else {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Success! Deleted key: %s\n", key)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&recurse, "recurse", false, "delete every key under the prefix KEY")
	return cmd
}

func newKVLsCmd(g *globals) *cobra.Command {
	var (
		out     *outputFormat
		recurse bool
	)
	cmd := &cobra.Command{
		Use:     "ls [PREFIX]",
		Aliases: []string{"list"},
		Short:   "List keys under a prefix",
		Long: `List the keys under PREFIX (default: all), one level deep: keys below the
next "/" after PREFIX are folded into one entry ending in "/", like a
directory. With --recurse, list every key under PREFIX with its ModifyIndex,
flags, lock session and value (or its size when it is long or binary).

Examples:
  herd kv ls
  herd kv ls app/
  herd kv ls --recurse app/
  herd kv ls --recurse -o json app/`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !recurse {
				keys, _, err := c.KVKeys(cmd.Context(), prefix, "/", nil)
				if err != nil {
					return err
				}
				if keys == nil {
					keys = []string{}
				}
				if *out != outputTable {
					return printOut(w, *out, keys)
				}
				for _, k := range keys {
					if _, err := fmt.Fprintln(w, k); err != nil {
						return err
					}
				}
				return nil
			}
			pairs, _, err := c.KVList(cmd.Context(), prefix, nil)
			if err != nil {
				return err
			}
			if pairs == nil {
				pairs = []*api.KVPair{}
			}
			if *out != outputTable {
				return printOut(w, *out, pairs)
			}
			t := newTable(w, "KEY", "MODIFY_INDEX", "FLAGS", "SESSION", "VALUE")
			for _, p := range pairs {
				t.row(p.Key, strconv.FormatUint(p.ModifyIndex, 10), strconv.FormatUint(p.Flags, 10), p.Session, displayValue(p.Value))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&recurse, "recurse", false, "list every key under PREFIX with its fields and value")
	out = addOutputFlag(cmd)
	return cmd
}
