package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testcluster"
)

// secretOf returns the SecretID line's value in a token command's output.
func secretOf(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "SecretID:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no SecretID in:\n%s", out)
	return ""
}

// TestACLCommands drives policies, API tokens, join tokens and the gossip
// keyring through the CLI, and checks that a narrow token is held to its
// policy.
func TestACLCommands(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	addr := n.Agent().APIAddr()
	ca := []string{"--address", addr, "--ca-cert", c.CACert}

	// A second bootstrap is refused, saying why.
	r := herd(t, append(ca, "--token", "", "acl", "bootstrap")...)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "bootstrapped already")

	pol := filepath.Join(t.TempDir(), "app.yaml")
	os.WriteFile(pol, []byte("name: app\ndescription: app settings\nrules:\n  - {resource: kv, prefix: app/, access: write}\n"), 0o644)
	wantCode(t, cli(t, n, "acl", "policy", "apply", "-f", pol), 0)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nrules:\n  - {resource: kvv, access: rw}\n"), 0o644)
	r = cli(t, n, "acl", "policy", "apply", "-f", bad)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `rules[0].resource: "kvv" is not one of`, `rules[0].access`)
	r = cli(t, n, "acl", "policy", "ls")
	wantCode(t, r, 0)
	wantContains(t, "policy ls", r.stdout, "app", "app settings")
	r = cli(t, n, "acl", "policy", "show", "app")
	wantCode(t, r, 0)
	wantContains(t, "policy show", r.stdout, "kv", "app/", "write")

	r = cli(t, n, "acl", "token", "create", "--policy", "app", "--description", "the app", "--ttl", "1h")
	wantCode(t, r, 0)
	appTok := secretOf(t, r.stdout)
	wantContains(t, "token create", r.stdout, "Expires:")
	as := append(ca, "--token", appTok)
	wantCode(t, herd(t, append(as, "kv", "put", "app/x", "1")...), 0)
	r = herd(t, append(as, "kv", "put", "other/x", "1")...)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `lacks kv write on "other/x"`, "HTTP 403")
	r = herd(t, append(as, "acl", "token", "self")...)
	wantCode(t, r, 0)
	wantContains(t, "token self", r.stdout, "app", "the app")
	r = cli(t, n, "acl", "token", "ls")
	wantCode(t, r, 0)
	wantContains(t, "token ls", r.stdout, "(management)", "the app")
	if strings.Contains(r.stdout, appTok) {
		t.Fatal("token ls printed a secret")
	}
	accessor := ""
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "the app") {
			accessor = strings.Fields(line)[0]
		}
	}
	wantCode(t, cli(t, n, "acl", "token", "rm", accessor), 0)
	r = herd(t, append(as, "kv", "get", "app/x")...)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "ACL token not found", "HTTP 401")
	wantCode(t, cli(t, n, "acl", "policy", "rm", "app"), 0)

	// Join tokens: create (printed once), list, revoke.
	r = cli(t, n, "token", "create", "--role", "server", "--ttl", "10m", "--description", "rack 3")
	wantCode(t, r, 0)
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "herd1.") {
		t.Fatalf("token create printed %q", r.stdout)
	}
	id := strings.Split(tok, ".")[1]
	r = cli(t, n, "token", "ls")
	wantCode(t, r, 0)
	wantContains(t, "token ls", r.stdout, id, "server", "rack 3")
	if strings.Contains(r.stdout, strings.Split(tok, ".")[2]) {
		t.Fatal("token ls printed a join token's secret")
	}
	wantCode(t, cli(t, n, "token", "revoke", id), 0)
	if r = cli(t, n, "token", "ls"); strings.Contains(r.stdout, id) {
		t.Fatalf("revoked token still listed:\n%s", r.stdout)
	}
	r = cli(t, n, "token", "create", "--role", "admin")
	wantCode(t, r, 2)

	// The gossip keyring: rotate, then two fingerprints, never a key.
	r = cli(t, n, "operator", "keyring", "ls")
	wantCode(t, r, 0)
	if strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("keyring ls before a rotation:\n%s", r.stdout)
	}
	wantCode(t, cli(t, n, "operator", "keyring", "rotate"), 0)
	testcluster.WaitFor(t, 10*time.Second, "the rotation to show", func() bool {
		r = herd(t, "--address", addr, "operator", "keyring", "ls")
		return strings.Count(r.stdout, "\n") == 3 && strings.Contains(r.stdout, "true") && strings.Contains(r.stdout, "false")
	})
}
