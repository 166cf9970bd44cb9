package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// buildWebServer builds the agent tests' web server, the replica these
// tests run with the exec driver.
func buildWebServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "webserver")
	out, err := exec.Command("go", "build", "-o", bin, "../../internal/agent/testdata/webserver").CombinedOutput()
	if err != nil {
		t.Fatalf("building the test web server: %v\n%s", err, out)
	}
	return bin
}

// webYAML is a service of the test web server with short health and
// update timers. extraEnv lines are added to its environment.
func webYAML(bin, version string, replicas int, extraEnv ...string) string {
	env := ""
	for _, e := range extraEnv {
		env += "\n    " + e
	}
	return fmt.Sprintf(`kind: service
name: web
routes:
  - path_prefix: /
health_check:
  path: /health
  interval: 200ms
  timeout: 150ms
  rise: 1
  fall: 2
run:
  driver: exec
  command: %s
  env:
    VERSION: %s%s
  replicas: %d
  restart:
    delay: 100ms
    max_delay: 1s
  update:
    max_parallel: 1
    min_healthy_time: 300ms
    healthy_deadline: 3s
    auto_revert: true
`, bin, version, env, replicas)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startRunCluster starts a cluster whose nodes allocate replica ports from
// a random range below both herd's default range (20000-32000, where other
// agents on this machine allocate theirs) and the kernel's ephemeral ports:
// a replica whose port someone else holds could never get healthy.
func startRunCluster(t *testing.T, servers, clients int) *testcluster.Cluster {
	t.Helper()
	base := 10000 + rand.IntN(90)*100
	return start(t, testcluster.Options{Servers: servers, Clients: clients, Configure: func(i int, c *config.Config) {
		c.Workload.PortMin = base + i*100
		c.Workload.PortMax = c.Workload.PortMin + 99
	}})
}

// startWeb starts a one-server cluster (the server is also the node that
// runs replicas) and applies the web service with replicas replicas.
func startWeb(t *testing.T, replicas int) (*testcluster.Node, string) {
	t.Helper()
	bin := buildWebServer(t)
	c := startRunCluster(t, 1, 0)
	n := c.Nodes[0]
	waitNode(t, n)
	r := cli(t, n, "apply", "-f", writeFile(t, "web.yaml", webYAML(bin, "v1", replicas)))
	wantCode(t, r, 0)
	wantContains(t, "apply", r.stdout, "service/web applied", fmt.Sprintf("web: rollout complete: %d/%d replicas healthy", replicas, replicas))
	return n, bin
}

// waitNode waits until the agent has registered itself as a node.
func waitNode(t *testing.T, n *testcluster.Node) {
	t.Helper()
	testcluster.WaitFor(t, 15*time.Second, "the agent to register as a node", func() bool {
		nodes, _, err := n.Client(t).Nodes(testcluster.Ctx(t, 5*time.Second), nil)
		return err == nil && len(nodes) == 1 && nodes[0].Status == api.NodeReady
	})
}

// runningReplicas lists the replicas of svc meant to run.
func runningReplicas(t *testing.T, n *testcluster.Node, svc string) []*api.Replica {
	t.Helper()
	rs, _, err := n.Client(t).Replicas(testcluster.Ctx(t, 5*time.Second), svc, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return visibleReplicas(rs, false)
}

// rowsByFirst indexes table rows (after the header) by their first field.
func rowsByFirst(t *testing.T, out string, header string) map[string][]string {
	t.Helper()
	rows := tableRows(out)
	if len(rows) == 0 || strings.Join(rows[0], " ") != header {
		t.Fatalf("table header is not %q:\n%s", header, out)
	}
	m := map[string][]string{}
	for _, row := range rows[1:] {
		m[row[0]] = row
	}
	return m
}

// ps, node ls, node show, logs and scale against real replicas of the
// test web server.
func TestReplicaCommands(t *testing.T) {
	n, _ := startWeb(t, 2)
	live := runningReplicas(t, n, "web")
	if len(live) != 2 {
		t.Fatalf("%d replicas run, want 2", len(live))
	}

	t.Run("ps", func(t *testing.T) {
		for _, args := range [][]string{{"ps"}, {"ps", "web"}, {"ps", "--node", n.Name}} {
			r := cli(t, n, args...)
			wantCode(t, r, 0)
			rows := rowsByFirst(t, r.stdout, "ID SERVICE NODE STATE HEALTH RESTARTS AGE PORTS VERSION ERROR")
			if len(rows) != 2 {
				t.Fatalf("%v: %d rows, want 2:\n%s", args, len(rows), r.stdout)
			}
			for _, rep := range live {
				row := rows[rep.ID]
				want := []string{rep.ID, "web", n.Name, "running", "healthy", "0"}
				if row == nil || strings.Join(row[:6], " ") != strings.Join(want, " ") {
					t.Fatalf("%v: row %q, want it to start with %q", args, row, want)
				}
				if row[7] != fmt.Sprintf("http=%d", rep.Ports["http"]) || row[8] != fmt.Sprint(rep.Version) || row[9] != "-" {
					t.Fatalf("%v: row %q: ports, version or error wrong for %+v", args, row, rep)
				}
			}
		}
		r := cli(t, n, "ps", "web", "-o", "json")
		wantCode(t, r, 0)
		rs := decodeJSON[[]api.Replica](t, r.stdout)
		if len(rs) != 2 || rs[0].ID >= rs[1].ID || rs[0].State != api.ReplicaRunning || rs[0].Node != n.Name {
			t.Fatalf("ps -o json: %+v", rs)
		}
		r = cli(t, n, "ps", "--node", "elsewhere")
		wantCode(t, r, 0)
		if len(tableRows(r.stdout)) != 1 {
			t.Fatalf("ps on a node without replicas printed rows:\n%s", r.stdout)
		}
		r = cli(t, n, "ps", "nosuch")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, `no service "nosuch"`)
	})

	t.Run("node ls and show", func(t *testing.T) {
		r := cli(t, n, "node", "ls")
		wantCode(t, r, 0)
		rows := rowsByFirst(t, r.stdout, "NAME STATUS ELIGIBLE ZONE CPU(m) MEMORY(MiB) REPLICAS DRIVERS")
		row := rows[n.Name]
		if len(rows) != 1 || row == nil || strings.Join(row[1:4], " ") != "ready yes -" || row[6] != "2" ||
			!strings.HasPrefix(row[4], "200/") || !strings.HasPrefix(row[5], "128/") || !strings.HasPrefix(row[7], "exec") {
			t.Fatalf("node ls:\n%s", r.stdout)
		}
		r = cli(t, n, "node", "ls", "-o", "json")
		wantCode(t, r, 0)
		nodes := decodeJSON[[]api.Node](t, r.stdout)
		if len(nodes) != 1 || nodes[0].Name != n.Name || nodes[0].Used.CPU != 200 || nodes[0].Drivers["exec"] != "" {
			t.Fatalf("node ls -o json: %+v", nodes)
		}

		r = cli(t, n, "node", "show", n.Name)
		wantCode(t, r, 0)
		wantContains(t, "node show", r.stdout, "status         ready", "driver exec    usable", "cpu            200 of ",
			"limits         ", "ports          ", live[0].ID, live[1].ID, "running", "healthy")
		r = cli(t, n, "node", "show", n.Name, "-o", "json")
		wantCode(t, r, 0)
		v := decodeJSON[nodeView](t, r.stdout)
		if v.Node == nil || v.Node.Name != n.Name || len(v.Replicas) != 2 {
			t.Fatalf("node show -o json: %+v", v)
		}
		r = cli(t, n, "node", "show", "nosuch")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, `no node "nosuch"`)
	})

	t.Run("logs", func(t *testing.T) {
		id := live[0].ID
		r := cli(t, n, "logs", id)
		wantCode(t, r, 0)
		wantContains(t, "logs", r.stdout, "replica "+id+" version v1 listening on 127.0.0.1:")
		r = cli(t, n, "logs", "web", "--replica", strings.TrimPrefix(live[1].ID, "web-"), "--tail", "1")
		wantCode(t, r, 0)
		wantContains(t, "logs --replica", r.stdout, "replica "+live[1].ID+" version v1 listening on")

		r = cli(t, n, "logs", "web")
		wantCode(t, r, 2)
		wantContains(t, "stderr", r.stderr, "service web has 2 replicas", "--replica", live[0].ID, live[1].ID, "Usage:")

		r = cli(t, n, "logs", "web-00000000")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, `no replica or service "web-00000000"`)
		r = cli(t, n, "logs", "web", "--replica", "00000000")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, `service web has no replica "00000000"`, live[0].ID)
	})

	t.Run("logs follow", func(t *testing.T) {
		// The agent must flush a followed log as it goes.
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetContext(ctx)
		done := make(chan int, 1)
		go func() {
			done <- execute(root, withCreds([]string{"--address", n.Agent().APIAddr(), "logs", "-f", live[0].ID}))
		}()
		// However the test ends, the command stops before it does.
		var code int
		stopped := false
		stop := func() {
			if !stopped {
				cancel() // as an interrupt does
				code, stopped = <-done, true
			}
		}
		defer stop()
		testcluster.WaitFor(t, 10*time.Second, "logs -f to print the replica's first line", func() bool {
			return strings.Contains(out.String(), "listening on")
		})
		select {
		case <-done:
			t.Fatalf("logs -f ended on its own: %s", errOut.String())
		case <-time.After(300 * time.Millisecond):
		}
		stop()
		if code != 0 {
			t.Fatalf("logs -f ended with exit %d: %s", code, errOut.String())
		}
	})

	t.Run("scale", func(t *testing.T) {
		r := cli(t, n, "scale", "web", "3", "--wait", "--timeout", "30s")
		wantCode(t, r, 0)
		wantContains(t, "scale", r.stdout, "web scaled to 3 replicas (was 2)", "web: 3/3 replicas healthy")
		rs := runningReplicas(t, n, "web")
		healthy := 0
		for _, rep := range rs {
			if rep.State == api.ReplicaRunning && rep.Health == api.HealthHealthy {
				healthy++
			}
		}
		if len(rs) != 3 || healthy != 3 {
			t.Fatalf("after scale --wait: %d replicas, %d healthy", len(rs), healthy)
		}
		r = cli(t, n, "ps", "web")
		wantCode(t, r, 0)
		if rows := tableRows(r.stdout); len(rows) != 4 {
			t.Fatalf("ps after scaling to 3:\n%s", r.stdout)
		}

		r = cli(t, n, "scale", "web", "1", "--wait", "--timeout", "30s")
		wantCode(t, r, 0)
		wantContains(t, "scale", r.stdout, "web scaled to 1 replica (was 3)", "web: 1/1 replicas healthy")

		static := writeFile(t, "static.yaml", "kind: service\nname: static\nroutes: [{host: static.test}]\nbackends: [{address: 127.0.0.1:9}]\n")
		wantCode(t, cli(t, n, "apply", "-f", static), 0)
		r = cli(t, n, "scale", "static", "2")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, "service static has no run section: herd runs no replicas of it")
		r = cli(t, n, "scale", "nosuch", "2")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, `no service "nosuch"`)
	})
}

// logs reads a replica's output from the agent that runs it, which need
// not be the one the CLI talks to.
func TestLogsFromTheReplicasNode(t *testing.T) {
	bin := buildWebServer(t)
	c := startRunCluster(t, 1, 1)
	server := c.Nodes[0]
	testcluster.WaitFor(t, 15*time.Second, "both agents to register as nodes", func() bool {
		nodes, _, err := server.Client(t).Nodes(testcluster.Ctx(t, 5*time.Second), nil)
		return err == nil && len(nodes) == 2 && nodes[0].Status == api.NodeReady && nodes[1].Status == api.NodeReady
	})
	svc := webYAML(bin, "v1", 1) + "  constraints:\n    - {attribute: node, op: equals, values: [client1]}\n"
	wantCode(t, cli(t, server, "apply", "-f", writeFile(t, "web.yaml", svc)), 0)
	rs := runningReplicas(t, server, "web")
	if len(rs) != 1 || rs[0].Node != "client1" {
		t.Fatalf("the replica is not on client1: %+v", rs)
	}
	r := cli(t, server, "logs", "web")
	wantCode(t, r, 0)
	wantContains(t, "logs", r.stdout, "replica "+rs[0].ID+" version v1 listening on")
	// The server's own API does not have it.
	if _, err := server.Client(t).ReplicaLogs(testcluster.Ctx(t, 5*time.Second), rs[0].ID, "stdout", 0, false); err == nil {
		t.Fatal("the server served the logs of a replica it does not run")
	}
}

// A node drained on a one-node cluster has nowhere to move its replicas:
// they keep running, the node shows as draining, and ending the drain
// makes it eligible again.
func TestNodeDrainAndEligibility(t *testing.T) {
	n, _ := startWeb(t, 2)
	before := runningReplicas(t, n, "web")

	r := cli(t, n, "node", "drain", n.Name)
	wantCode(t, r, 0)
	wantContains(t, "drain", r.stdout, "node/"+n.Name+" draining")
	wantContains(t, "stderr", r.stderr, "no other node is ready and eligible")
	eligible := func() string {
		t.Helper()
		r := cli(t, n, "node", "ls")
		wantCode(t, r, 0)
		return rowsByFirst(t, r.stdout, "NAME STATUS ELIGIBLE ZONE CPU(m) MEMORY(MiB) REPLICAS DRIVERS")[n.Name][2]
	}
	if got := eligible(); got != "draining" {
		t.Fatalf("node ls shows %q after drain, want draining", got)
	}
	// Replacements cannot be placed: they wait, and say why. A drain moves
	// max_parallel (here 1) replicas at a time, so one replacement waits.
	testcluster.WaitFor(t, 10*time.Second, "a replacement waiting for a node", func() bool {
		waiting := 0
		for _, rep := range runningReplicas(t, n, "web") {
			if rep.Node == "" && rep.Error != "" {
				waiting++
			}
		}
		return waiting == 1
	})
	for _, rep := range before {
		found := false
		for _, now := range runningReplicas(t, n, "web") {
			found = found || (now.ID == rep.ID && now.State == api.ReplicaRunning)
		}
		if !found {
			t.Fatalf("replica %s stopped although it had nowhere to go", rep.ID)
		}
	}

	r = cli(t, n, "node", "drain", n.Name, "--disable")
	wantCode(t, r, 0)
	wantContains(t, "drain --disable", r.stdout, "node/"+n.Name+" drain ended")
	if got := eligible(); got != "yes" {
		t.Fatalf("node ls shows %q after drain --disable, want yes", got)
	}
	testcluster.WaitFor(t, 10*time.Second, "the waiting replacements to go", func() bool {
		rs := runningReplicas(t, n, "web")
		return len(rs) == 2 && rs[0].Node == n.Name && rs[1].Node == n.Name
	})

	r = cli(t, n, "node", "eligibility", n.Name, "--disable")
	wantCode(t, r, 0)
	wantContains(t, "eligibility", r.stdout, "ineligible")
	if got := eligible(); got != "no" {
		t.Fatalf("node ls shows %q after eligibility --disable, want no", got)
	}
	wantCode(t, cli(t, n, "node", "eligibility", n.Name, "--enable"), 0)
	if got := eligible(); got != "yes" {
		t.Fatalf("node ls shows %q after eligibility --enable, want yes", got)
	}
	r = cli(t, n, "node", "drain", "nosuch")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `no node "nosuch"`)
}

// apply follows a rollout to its end: complete, or failed and reverted;
// and, when only the count changed, until the count is met.
func TestApplyFollowsRollout(t *testing.T) {
	n, bin := startWeb(t, 2)
	version := runningReplicas(t, n, "web")[0].Version

	// Only the count changes: no rollout, apply waits for the count.
	r := cli(t, n, "apply", "-f", writeFile(t, "web3.yaml", webYAML(bin, "v1", 3)))
	wantCode(t, r, 0)
	wantContains(t, "apply", r.stdout, "web: 3/3 replicas healthy")
	if strings.Contains(r.stdout, "rolling out") {
		t.Fatalf("a change of count started a rollout:\n%s", r.stdout)
	}

	// A new version rolls out replica by replica.
	r = cli(t, n, "apply", "-f", writeFile(t, "web-v2.yaml", webYAML(bin, "v2", 3)))
	wantCode(t, r, 0)
	wantContains(t, "apply", r.stdout, "web: rolling out run version", " healthy\n", "web: rollout complete: 3/3 replicas healthy")
	rs := runningReplicas(t, n, "web")
	for _, rep := range rs {
		if rep.Version == version || rep.Run.Env["VERSION"] != "v2" {
			t.Fatalf("after the v2 rollout a replica runs %+v", rep)
		}
	}

	// A version that never gets healthy is reverted; apply says so and
	// fails.
	start := time.Now()
	r = cli(t, n, "apply", "-f", writeFile(t, "web-bad.yaml", webYAML(bin, "v3", 3, `FAIL_HEALTH: "1"`)))
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "web: rollout failed and was reverted:", "not healthy after 3s")
	wantContains(t, "stdout", r.stdout, "web: rolling out run version", "health check failing")
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("apply of a failing version took %s", d)
	}

	// --wait=false returns at once; a timeout says what it waited for.
	r = cli(t, n, "apply", "--wait=false", "-f", writeFile(t, "web-v4.yaml", webYAML(bin, "v4", 3)))
	wantCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "service/web applied" {
		t.Fatalf("apply --wait=false printed %q", r.stdout)
	}
	r = cli(t, n, "apply", "--timeout", "200ms", "-f", writeFile(t, "web-v5.yaml", webYAML(bin, "v5", 3)))
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "timed out after 200ms waiting for the rollout of web (run version ", "replicas healthy")

	// A service without a run section is applied as before.
	static := writeFile(t, "static.yaml", "kind: service\nname: static\nroutes: [{host: static.test}]\nbackends: [{address: 127.0.0.1:9}]\n")
	r = cli(t, n, "apply", "-f", static)
	wantCode(t, r, 0)
	if r.stdout != "service/static applied\n" {
		t.Fatalf("apply of a static service printed %q", r.stdout)
	}
}

func TestWorkloadUsageErrors(t *testing.T) {
	t.Parallel()
	addr := []string{"--address", "127.0.0.1:1"}
	for _, args := range [][]string{
		{"ps", "a", "b"},
		{"ps", "-o", "xml"},
		{"scale", "web"},
		{"scale", "web", "x"},
		{"scale", "web", "-1"},
		{"scale", "web", "--", "-1"},
		{"scale", "web", "10001"},
		{"scale", "web", "3", "--timeout", "0s"},
		{"logs"},
		{"logs", "web", "--tail", "-1"},
		{"node"},
		{"node", "ls", "extra"},
		{"node", "show"},
		{"node", "drain"},
		{"node", "eligibility", "n1"},
		{"node", "eligibility", "n1", "--enable", "--disable"},
		{"apply", "-f", "x.yaml", "--timeout", "0s"},
	} {
		r := herd(t, append(append([]string{}, addr...), args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
			t.Errorf("herd %q: exit %d, want 2 with usage (stderr: %s)", args, r.code, r.stderr)
		}
	}
}
