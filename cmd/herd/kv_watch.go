package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

// deletedEvent is what "kv watch -o json" prints when a key is deleted;
// other changes print the key as the API returns it.
type deletedEvent struct {
	Key     string
	Deleted bool
}

func newKVWatchCmd(g *globals) *cobra.Command {
	var (
		out    *outputFormat
		prefix bool
		count  int
	)
	cmd := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print a key's value every time it changes",
		Long: `Wait for KEY to change and print its new value each time it does (every
write counts, even of the same value), until interrupted or until --count
changes were seen. The value the key has when watch starts is not printed.
A deletion is reported on standard error.

With --prefix, KEY is a prefix and every changed key under it is printed as
KEY<tab>VALUE. With -o json every change is printed as a JSON object: the key
as the API returns it (value in base64), or {"Key": ..., "Deleted": true}.

Watch uses blocking queries, so it costs nothing while nothing changes; it
retries with back-off while the agent is unreachable.

Examples:
  herd kv watch app/port
  herd kv watch --prefix app/
  herd kv watch --count 1 deploy/go   # wait for the next write, then exit`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return usagef("--count must not be negative")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := &watcher{
				c: c, key: args[0], json: *out == outputJSON, count: count,
				out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(),
			}
			if prefix {
				err = w.watchPrefix(ctx)
			} else {
				err = w.watchKey(ctx)
			}
			if err == nil || ctx.Err() != nil {
				// Done, or interrupted: both are a normal end of a watch.
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&prefix, "prefix", false, "watch every key under the prefix KEY")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many changes (0: run until interrupted)")
	out = addOutputFlag(cmd)
	return cmd
}

type watcher struct {
	c           *api.Client
	key         string
	json        bool
	count       int
	out, errOut io.Writer

	printed int
	failing bool
}

// errWatchDone ends a watch after --count changes.
var errWatchDone = fmt.Errorf("watch done")

// emit prints one change and reports errWatchDone when --count is reached.
func (w *watcher) emit(pair *api.KVPair, deletedKey string, withKey bool) error {
	var err error
	switch {
	case w.json && pair != nil:
		err = printJSON(w.out, pair)
	case w.json:
		err = printJSON(w.out, deletedEvent{Key: deletedKey, Deleted: true})
	case pair == nil:
		_, err = fmt.Fprintf(w.errOut, "deleted: %s\n", deletedKey)
	case withKey:
		_, err = fmt.Fprintf(w.out, "%s\t%s\n", pair.Key, pair.Value)
	default:
		_, err = fmt.Fprintf(w.out, "%s\n", pair.Value)
	}
	if err != nil {
		return err
	}
	w.printed++
	if w.count > 0 && w.printed >= w.count {
		return errWatchDone
	}
	return nil
}

// retry reports a failed blocking query once per run of failures and
// waits before the next attempt. It returns false when ctx ends.
func (w *watcher) retry(ctx context.Context, err error, attempt int) bool {
	if !w.failing {
		fmt.Fprintf(w.errOut, "watch: %v (retrying)\n", err)
		w.failing = true
	}
	return sleepCtx(ctx, backoff(attempt))
}

func (w *watcher) ok() {
	if w.failing {
		fmt.Fprintln(w.errOut, "watch: agent reachable again")
		w.failing = false
	}
}

// nextIndex is the index to block on after an answer with index got; an
// answer without an index must not turn the next query into a busy poll.
func nextIndex(prev uint64, meta *api.Meta) uint64 {
	if meta == nil || meta.Index == 0 {
		return prev
	}
	return meta.Index
}

// poll runs one blocking query loop: query is called first without a wait
// index (its answer is the starting point), then again and again with the
// index of the previous answer; changed runs after each of those answers.
// Errors are retried with back-off; poll ends with ctx or when changed
// fails.
func (w *watcher) poll(ctx context.Context, query func(*api.QueryOptions) (*api.Meta, error), changed func() error) error {
	meta, err := query(nil)
	if err != nil {
		return err
	}
	index := nextIndex(1, meta)
	for attempt := 0; ; {
		meta, err := query(&api.QueryOptions{WaitIndex: index})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			attempt++
			if !w.retry(ctx, err, attempt) {
				return ctx.Err()
			}
			continue
		}
		attempt = 0
		w.ok()
		index = nextIndex(index, meta)
		if err := changed(); err != nil {
			return doneIsNil(err)
		}
	}
}

func (w *watcher) watchKey(ctx context.Context) error {
	var pair *api.KVPair
	first := true
	var last uint64
	return w.poll(ctx, func(q *api.QueryOptions) (*api.Meta, error) {
		p, meta, err := w.c.KVGet(ctx, w.key, q)
		if err == nil {
			pair = p
			if first {
				last, first = modifyIndex(p), false
			}
		}
		return meta, err
	}, func() error {
		mod := modifyIndex(pair)
		if mod == last {
			return nil
		}
		last = mod
		return w.emit(pair, w.key, false)
	})
}

func (w *watcher) watchPrefix(ctx context.Context) error {
	var pairs []*api.KVPair
	var seen map[string]uint64
	return w.poll(ctx, func(q *api.QueryOptions) (*api.Meta, error) {
		ps, meta, err := w.c.KVList(ctx, w.key, q)
		if err == nil {
			pairs = ps
			if seen == nil {
				seen = modifyIndexes(ps)
			}
		}
		return meta, err
	}, func() error {
		now := modifyIndexes(pairs)
		var deleted []string
		for k := range seen {
			if _, ok := now[k]; !ok {
				deleted = append(deleted, k)
			}
		}
		sort.Strings(deleted)
		// pairs come in key order.
		for _, p := range pairs {
			if seen[p.Key] == p.ModifyIndex {
				continue
			}
			seen[p.Key] = p.ModifyIndex
			if err := w.emit(p, "", true); err != nil {
				return err
			}
		}
		for _, k := range deleted {
			delete(seen, k)
			if err := w.emit(nil, k, true); err != nil {
				return err
			}
		}
		return nil
	})
}

func doneIsNil(err error) error {
	if err == errWatchDone {
		return nil
	}
	return err
}

func modifyIndex(p *api.KVPair) uint64 {
	if p == nil {
		return 0
	}
	return p.ModifyIndex
}

func modifyIndexes(pairs []*api.KVPair) map[string]uint64 {
	m := make(map[string]uint64, len(pairs))
	for _, p := range pairs {
		m[p.Key] = p.ModifyIndex
	}
	return m
}

// backoff is the wait before retry attempt n (1, 2, ...): 100ms doubling
// up to 5s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// sleepCtx waits d or until ctx ends; it reports whether the full wait
// passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
