package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// TestEventsCommand lists the formation's events, refuses an unknown
// type, and follows new events with -f until interrupted.
func TestEventsCommand(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	r := cli(t, n, "events")
	wantCode(t, r, 0)
	wantContains(t, "events", r.stdout, "leader.elected", "member.joined", "token.created")
	r = cli(t, n, "events", "--type", "member.exploded")
	wantCode(t, r, 2)
	wantContains(t, "stderr", r.stderr, `"member.exploded" is not an event type`)
	r = cli(t, n, "events", "-o", "json", "--type", "leader.elected")
	wantCode(t, r, 0)
	wantContains(t, "events -o json", r.stdout, `"type": "leader.elected"`)

	// -f prints a token's creation as it happens and stops on interrupt.
	var out, errOut syncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithCancel(context.Background())
	root.SetContext(ctx)
	done := make(chan int, 1)
	go func() {
		done <- execute(root, withCreds([]string{"--address", n.Agent().APIAddr(), "events", "-f", "--type", "token.revoked"}))
	}()
	r = cli(t, n, "token", "create")
	wantCode(t, r, 0)
	id := strings.Split(strings.TrimSpace(r.stdout), ".")[1]
	wantCode(t, cli(t, n, "token", "revoke", id), 0)
	testcluster.WaitFor(t, 10*time.Second, "events -f to print the revocation", func() bool {
		return strings.Contains(out.String(), "token.revoked") && strings.Contains(out.String(), "join:"+id)
	})
	if strings.Contains(out.String(), "token.created") {
		t.Errorf("events -f --type token.revoked printed another type:\n%s", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("events -f exited %d after an interrupt: %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events -f did not stop on interrupt")
	}
}

// TestMonitorCommand streams the agent's logs and shows a line the agent
// writes meanwhile.
func TestMonitorCommand(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	var out, errOut syncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root.SetContext(ctx)
	done := make(chan int, 1)
	go func() {
		done <- execute(root, withCreds([]string{"--address", n.Agent().APIAddr(), "monitor", "--level", "warn"}))
	}()
	// A refused join makes the server log a warning.
	cl := n.Client(t)
	testcluster.WaitFor(t, 10*time.Second, "the refused join in the monitor", func() bool {
		_, _ = cl.Join(context.Background(), &api.JoinRequest{Token: "herd1.garbage", Name: "x"})
		return strings.Contains(out.String(), "join refused") && strings.Contains(out.String(), "reason=\"malformed token\"")
	})
	if strings.Contains(out.String(), " INFO ") {
		t.Errorf("monitor --level warn printed info lines:\n%s", out.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("monitor exited %d: %s", code, errOut.String())
	}
	r := cli(t, n, "monitor", "--level", "loud")
	wantCode(t, r, 2)
}

// TestYAMLOutput: listing commands print YAML with the JSON field names.
func TestYAMLOutput(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	r := cli(t, n, "members", "-o", "yaml")
	wantCode(t, r, 0)
	wantContains(t, "members -o yaml", r.stdout, "- APIAddr: ", "Name: server1", "Status: alive")
	wantCode(t, cli(t, n, "kv", "put", "y/a", "1"), 0)
	r = cli(t, n, "kv", "get", "y/a", "-o", "yaml")
	wantCode(t, r, 0)
	wantContains(t, "kv get -o yaml", r.stdout, "Key: y/a")
	r = cli(t, n, "acl", "token", "ls", "-o", "yaml")
	wantCode(t, r, 0)
	wantContains(t, "acl token ls -o yaml", r.stdout, "accessor_id: ", "management: true")
	r = cli(t, n, "members", "-o", "xml")
	wantCode(t, r, 2)
	wantContains(t, "stderr", r.stderr, `must be "table", "json" or "yaml"`)
}
