//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

// The private network and the agents' addresses on it.
const (
	network = "herd-e2e"
	subnet  = "172.29.77.0/24"
	image   = "herd:e2e"
)

// node is one agent's container.
type node struct {
	name, ip string
	server   bool
}

var nodes = []node{
	{"s1", "172.29.77.11", true}, {"s2", "172.29.77.12", true}, {"s3", "172.29.77.13", true},
	{"c1", "172.29.77.21", false}, {"c2", "172.29.77.22", false},
}

// docker runs the docker CLI and returns its trimmed output.
func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func container(n node) string { return "herd-e2e-" + n.name }

// cluster is the running containers and how to reach their APIs.
type cluster struct {
	t     *testing.T
	ca    string // the CA file, copied out of s1
	token string // the management token
}

// client returns an API client of n's agent with the management token.
func (c *cluster) client(n node) *api.Client {
	cl, err := api.NewClientConfig(api.Config{Address: "https://" + n.ip + ":7700", Token: c.token, CACert: c.ca, IgnoreEnv: true})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// startCluster builds nothing (make e2e built the image), creates the
// network and starts the five agents the way an operator would: s1 creates
// the cluster, the management token and join tokens come from the CLI in
// its container, and the others join with them.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := docker(ctx, "image", "inspect", image); err != nil {
		t.Fatalf("no %s image: run make e2e (%v)", image, err)
	}
	cleanup := func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		for _, n := range nodes {
			_, _ = docker(cctx, "rm", "-f", container(n))
		}
		_, _ = docker(cctx, "network", "rm", network)
	}
	cleanup() // what an interrupted run left
	t.Cleanup(cleanup)
	if _, err := docker(ctx, "network", "create", "--subnet", subnet, network); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, ca: filepath.Join(t.TempDir(), "ca.pem")}
	run := func(n node, extra ...string) {
		args := []string{"run", "-d", "--name", container(n), "--hostname", n.name, "--network", network, "--ip", n.ip,
			image, "agent", "--node", n.name, "--data-dir", "/data", "--bind", n.ip, "--log-level", "debug",
			"--gateway-http", fmt.Sprintf("0.0.0.0:%d", gatewayPort)}
		if n.server {
			args = append(args, "--server")
		}
		if _, err := docker(ctx, append(args, extra...)...); err != nil {
			t.Fatal(err)
		}
	}
	first := nodes[0]
	run(first)
	herd := func(args ...string) (string, error) {
		return docker(ctx, append([]string{"exec", container(first), "/herd", "--address", first.ip + ":7700",
			"--ca-cert", "/data/tls/ca.pem"}, args...)...)
	}
	var out string
	var err error
	waitFor(t, 30*time.Second, "acl bootstrap on s1", func() bool {
		out, err = herd("acl", "bootstrap")
		return err == nil
	})
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "SecretID:"); ok {
			c.token = strings.TrimSpace(v)
		}
	}
	serverTok, err := herd("--token", c.token, "token", "create", "--role", "server", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	clientTok, err := herd("--token", c.token, "token", "create", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docker(ctx, "cp", container(first)+":/data/tls/ca.pem", c.ca); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		tok := lastLine(clientTok)
		if n.server {
			tok = lastLine(serverTok)
		}
		run(n, "--retry-join", first.ip, "--token", tok)
	}
	cl := c.client(first)
	defer cl.Close()
	waitFor(t, 60*time.Second, "5 live members and 3 voters", func() bool {
		ms, err := cl.Members(ctx)
		if err != nil {
			return false
		}
		alive := 0
		for _, m := range ms {
			if m.Status == api.MemberAlive {
				alive++
			}
		}
		cfg, err := cl.RaftConfiguration(ctx)
		return err == nil && alive == len(nodes) && len(cfg.Servers) == 3
	})
	return c
}

// lastLine is the last line of s (docker exec mixes the CLI's stderr note
// into its output).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "herd1.") {
			return strings.TrimSpace(lines[i])
		}
	}
	return lines[len(lines)-1]
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs saves every container's log into dir (for a failed run).
func (c *cluster) saveLogs(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		out, _ := exec.CommandContext(ctx, "docker", "logs", container(n)).CombinedOutput()
		_ = os.WriteFile(filepath.Join(dir, n.name+".log"), out, 0o644)
	}
}
