package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// runAsync runs the CLI in a goroutine; the channel yields its result.
func runAsync(t *testing.T, args ...string) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- herd(t, args...) }()
	return ch
}

// kvGets reads the agent's count of KV reads from its metrics.
func kvGets(t *testing.T, c *api.Client) int {
	t.Helper()
	text, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), `herd_kv_operations_total{op="get"} `); ok {
			n, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	return 0
}

// startWatch runs "herd kv watch args..." and returns once the watch has
// read the current state and sent its blocking query (its second read), so
// that every later write is a change it must report.
func startWatch(t *testing.T, n *testcluster.Node, args ...string) <-chan result {
	t.Helper()
	c := n.Client(t)
	before := kvGets(t, c)
	done := runAsync(t, append([]string{"--address", n.Agent().APIAddr(), "kv", "watch"}, args...)...)
	testcluster.WaitFor(t, 15*time.Second, "the watch's blocking query", func() bool {
		return kvGets(t, c) >= before+2
	})
	return done
}

func waitResult(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the command did not return within 30s")
		return result{}
	}
}

func put(t *testing.T, c *api.Client, key, value string) {
	t.Helper()
	if ok, _, err := c.KVPut(context.Background(), key, []byte(value), nil); err != nil || !ok {
		t.Fatalf("put %s: %v %v", key, ok, err)
	}
}

// decodeStream decodes the JSON objects printed one after another.
func decodeStream[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decoding %q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}

func TestKVWatchKey(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	put(t, c, "cfg/x", "initial")
	put(t, c, "other", "o")

	done := startWatch(t, n, "--count", "1", "cfg/x")
	put(t, c, "other", "unrelated") // not a change of cfg/x
	put(t, c, "cfg/x", "v1")
	r := waitResult(t, done)
	wantCode(t, r, 0)
	if r.stdout != "v1\n" {
		t.Fatalf("watch --count 1 printed %q, want %q", r.stdout, "v1\n")
	}

	// Every write counts, a rewrite of the same value too; -o json prints
	// the key, a deletion prints Deleted.
	done = startWatch(t, n, "--count", "3", "-o", "json", "cfg/x")
	change(t, c, func() { put(t, c, "cfg/x", "v1") })
	change(t, c, func() {
		if _, err := c.KVDelete(context.Background(), "cfg/x", false); err != nil {
			t.Fatal(err)
		}
	})
	put(t, c, "cfg/x", "v2")
	r = waitResult(t, done)
	wantCode(t, r, 0)
	type event struct {
		Key     string
		Value   []byte
		Deleted bool
	}
	evs := decodeStream[event](t, r.stdout)
	if len(evs) != 3 || string(evs[0].Value) != "v1" || !evs[1].Deleted || evs[1].Key != "cfg/x" || string(evs[2].Value) != "v2" {
		t.Fatalf("watch -o json printed %+v", evs)
	}
}

// change makes a change that a running watch reports, and waits until the
// watch has sent its next blocking query, so that the next change cannot
// be merged with this one.
func change(t *testing.T, c *api.Client, f func()) {
	t.Helper()
	before := kvGets(t, c)
	f()
	testcluster.WaitFor(t, 15*time.Second, "the watch's next query", func() bool {
		return kvGets(t, c) >= before+1
	})
}

func TestKVWatchDeletionTable(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	put(t, c, "gone", "x")
	done := startWatch(t, n, "--count", "1", "gone")
	if _, err := c.KVDelete(context.Background(), "gone", false); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, done)
	wantCode(t, r, 0)
	wantContains(t, "stderr", r.stderr, "deleted: gone")
	if r.stdout != "" {
		t.Fatalf("a deletion printed %q on stdout", r.stdout)
	}
}

func TestKVWatchPrefix(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	put(t, c, "app/a", "1")
	put(t, c, "apple", "not under app/")

	done := startWatch(t, n, "--prefix", "--count", "2", "app/")
	put(t, c, "apple", "still not")
	change(t, c, func() { put(t, c, "app/b", "2") })
	put(t, c, "app/a", "3")
	r := waitResult(t, done)
	wantCode(t, r, 0)
	if r.stdout != "app/b\t2\napp/a\t3\n" {
		t.Fatalf("watch --prefix printed %q", r.stdout)
	}
}
