package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

var (
	webOnce sync.Once
	webDir  string // removed when the test binary ends
	webBin  string
	webErr  error
)

// removeWebServer deletes what webServer built.
func removeWebServer() {
	if webDir != "" {
		os.RemoveAll(webDir)
	}
}

// webServer builds testdata/webserver once per test binary.
func webServer(t *testing.T) string {
	t.Helper()
	webOnce.Do(func() {
		dir, err := os.MkdirTemp("", "herd-agent-test-")
		webDir = dir
		if err != nil {
			webErr = err
			return
		}
		webBin = filepath.Join(dir, "webserver")
		out, err := exec.Command("go", "build", "-o", webBin, "./testdata/webserver").CombinedOutput()
		if err != nil {
			webErr = fmt.Errorf("building the test web server: %v\n%s", err, out)
		}
	})
	if webErr != nil {
		t.Fatal(webErr)
	}
	return webBin
}

func intp(n int) *int { return &n }

// replicasOf lists a service's replicas meant to run.
func replicasOf(t *testing.T, c *api.Client, svc string) []*api.Replica {
	t.Helper()
	rs, _, err := c.Replicas(context.Background(), svc, "", nil)
	if err != nil {
		t.Fatalf("replicas: %v", err)
	}
	var out []*api.Replica
	for _, r := range rs {
		if r.Desired == api.DesiredRun {
			out = append(out, r)
		}
	}
	return out
}

// waitHealthy waits until the service has exactly n replicas meant to run,
// all running and healthy, with env VERSION=version answering.
func waitHealthy(t *testing.T, c *api.Client, svc string, n int, version string) []*api.Replica {
	t.Helper()
	var rs []*api.Replica
	testcluster.WaitFor(t, 30*time.Second, fmt.Sprintf("%d healthy replicas of %s at %s", n, svc, version), func() bool {
		all, _, err := c.Replicas(context.Background(), svc, "", nil)
		if err != nil {
			return false
		}
		rs = rs[:0]
		for _, r := range all {
			if r.Desired != api.DesiredRun {
				return false // wait until old ones are gone too
			}
			if r.State != api.ReplicaRunning || r.Health != api.HealthHealthy || r.Run.Env["VERSION"] != version {
				return false
			}
			rs = append(rs, r)
		}
		return len(rs) == n
	})
	return rs
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func webService(bin, version string, replicas int) *api.Service {
	return &api.Service{
		Name:   "web",
		Routes: []api.Route{{PathPrefix: "/"}},
		HealthCheck: &api.HealthCheck{Path: "/health", Interval: api.Duration(200 * time.Millisecond),
			Timeout: api.Duration(150 * time.Millisecond), Rise: 1, Fall: 2},
		Run: &api.Run{
			Driver: api.DriverExec, Command: bin, Env: map[string]string{"VERSION": version},
			Replicas: intp(replicas),
			Restart:  &api.RestartPolicy{Delay: api.Duration(100 * time.Millisecond), MaxDelay: api.Duration(time.Second)},
			Update: &api.UpdatePolicy{MaxParallel: 1, MinHealthyTime: api.Duration(300 * time.Millisecond),
				HealthyDeadline: api.Duration(3 * time.Second), AutoRevert: true},
		},
	}
}

// TestServiceReplicasLifecycle runs a real process per replica through the
// exec driver on one agent: placement, routing through the gateway,
// restart after a crash, scale up and down, a rolling update, a failing
// update that reverts, and removal.
func TestServiceReplicasLifecycle(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
	}})
	n := c.Nodes[0]
	cl := n.Client(t)
	ctx := testcluster.Ctx(t, 2*time.Minute)
	gw := "http://" + n.Agent().GatewayAddr()

	if _, err := cl.ServicePut(ctx, webService(bin, "v1", 2)); err != nil {
		t.Fatal(err)
	}
	rs := waitHealthy(t, cl, "web", 2, "v1")
	if rs[0].Ports["http"] == rs[1].Ports["http"] || rs[0].Node != n.Name {
		t.Fatalf("replicas share a port or sit elsewhere: %+v %+v", rs[0], rs[1])
	}

	// The gateway routes to both.
	seen := map[string]bool{}
	testcluster.WaitFor(t, 10*time.Second, "the gateway to reach both replicas", func() bool {
		code, body, err := get(gw + "/")
		if err == nil && code == 200 {
			seen[strings.Fields(body)[0]] = true
		}
		return len(seen) == 2
	})

	// A replica that crashes is restarted by its node.
	victim := rs[0]
	addr := fmt.Sprintf("http://%s:%d", victim.Address, victim.Ports["http"])
	_, _, _ = get(addr + "/exit")
	testcluster.WaitFor(t, 15*time.Second, "the crashed replica to restart", func() bool {
		for _, r := range replicasOf(t, cl, "web") {
			if r.ID == victim.ID && r.Restarts >= 1 && r.State == api.ReplicaRunning && r.Health == api.HealthHealthy {
				return r.ExitCode != nil && *r.ExitCode == 3
			}
		}
		return false
	})

	// Scale up, then down.
	if _, err := cl.ServicePut(ctx, webService(bin, "v1", 3)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 3, "v1")
	if _, err := cl.ServicePut(ctx, webService(bin, "v1", 1)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 1, "v1")
	if _, err := cl.ServicePut(ctx, webService(bin, "v1", 2)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 2, "v1")

	// A rolling update replaces every replica; the rollout completes.
	if _, err := cl.ServicePut(ctx, webService(bin, "v2", 2)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 2, "v2")
	testcluster.WaitFor(t, 10*time.Second, "the v2 rollout to complete", func() bool {
		e, _, err := cl.ServiceGet(ctx, "web", nil)
		return err == nil && e.Rollout != nil && e.Rollout.State == api.RolloutComplete
	})
	testcluster.WaitFor(t, 10*time.Second, "the gateway to answer v2 only", func() bool {
		for range 10 {
			if code, body, err := get(gw + "/"); err != nil || code != 200 || !strings.HasSuffix(body, " v2") {
				return false
			}
		}
		return true
	})

	// A version that never gets healthy fails its rollout and is reverted;
	// the v2 replicas keep serving throughout.
	bad := webService(bin, "v3", 2)
	bad.Run.Env["FAIL_HEALTH"] = "1"
	if _, err := cl.ServicePut(ctx, bad); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "the v3 rollout to be reverted", func() bool {
		e, _, err := cl.ServiceGet(ctx, "web", nil)
		return err == nil && e.Rollout != nil && e.Rollout.RevertedFrom != 0 && e.Run.Env["VERSION"] == "v2" &&
			strings.Contains(e.Rollout.Message, "not healthy after 3s")
	})
	waitHealthy(t, cl, "web", 2, "v2")
	if code, body, err := get(gw + "/"); err != nil || code != 200 || !strings.HasSuffix(body, " v2") {
		t.Fatalf("after the revert the gateway answers %d %q %v", code, body, err)
	}

	// Removing the service stops its processes.
	live := replicasOf(t, cl, "web")
	if err := cl.ServiceDelete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "the replicas to be gone", func() bool {
		rs, _, err := cl.Replicas(ctx, "web", "", nil)
		return err == nil && len(rs) == 0
	})
	for _, r := range live {
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", r.Address, r.Ports["http"]), time.Second); err == nil {
			conn.Close()
			t.Errorf("replica %s still listens after its service was removed", r.ID)
		}
	}
}

// TestBadCommandBacksOffWithTheError: a command that does not exist shows
// its error and restarts with back-off, not in a storm.
func TestBadCommandBacksOffWithTheError(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 1})
	cl := c.Nodes[0].Client(t)
	ctx := testcluster.Ctx(t, time.Minute)
	svc := &api.Service{Name: "broken", Run: &api.Run{Driver: api.DriverExec, Command: "/nonexistent/herd-test-cmd",
		Restart: &api.RestartPolicy{Delay: api.Duration(200 * time.Millisecond), MaxDelay: api.Duration(2 * time.Second)}}}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	var r *api.Replica
	testcluster.WaitFor(t, 10*time.Second, "the replica to report its start error", func() bool {
		rs := replicasOf(t, cl, "broken")
		if len(rs) == 1 && rs[0].State == api.ReplicaBackoff && strings.Contains(rs[0].Error, "/nonexistent/herd-test-cmd") {
			r = rs[0]
			return true
		}
		return false
	})
	time.Sleep(2 * time.Second)
	rs := replicasOf(t, cl, "broken")
	// 200ms, 400ms, 800ms, 1.6s, ...: at most about 5 tries in 2.5 s.
	if len(rs) != 1 || rs[0].ID != r.ID || rs[0].Restarts > 6 {
		t.Fatalf("after 2s: %+v (restarts should back off)", rs)
	}
}

// TestDockerReplicaThroughGateway runs a replica as a container of a
// locally built image (FROM scratch with the static test server) and
// reaches it through the gateway. It skips where no Docker engine answers.
func TestDockerReplicaThroughGateway(t *testing.T) {
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine: %v %s", err, out)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "webserver"), "./testdata/webserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY webserver /webserver\nENTRYPOINT [\"/webserver\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("herd-test/agent-web:%d", time.Now().UnixNano())
	if out, err := exec.Command("docker", "build", "-q", "-t", image, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", image).Run() })

	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
	}})
	n := c.Nodes[0]
	cl := n.Client(t)
	ctx := testcluster.Ctx(t, 2*time.Minute)
	testcluster.WaitFor(t, 10*time.Second, "the node to offer docker", func() bool {
		nd, err := cl.Node(ctx, n.Name)
		return err == nil && nd != nil && nd.Drivers[api.DriverDocker] == ""
	})
	svc := webService("", "d1", 1)
	svc.Run = &api.Run{Driver: api.DriverDocker, Image: image, Env: map[string]string{"VERSION": "d1", "LISTEN_HOST": "0.0.0.0"},
		Resources: &api.Resources{CPU: 200, MemoryMB: 32}}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	r := waitHealthy(t, cl, "web", 1, "d1")[0]
	if !r.Enforced {
		t.Errorf("docker replica reports its limits as not enforced")
	}
	gw := "http://" + n.Agent().GatewayAddr()
	testcluster.WaitFor(t, 10*time.Second, "the gateway to reach the container", func() bool {
		code, body, err := get(gw + "/")
		return err == nil && code == 200 && body == r.ID+" d1"
	})
	// Its CPU is measured like a process's (its main process on the host).
	testcluster.WaitFor(t, 10*time.Second, "the container's CPU figure", func() bool {
		for range 20 {
			_, _, _ = get(gw + "/")
		}
		us, err := cl.AgentReplicas(ctx)
		return err == nil && len(us) == 1 && us[0].ID == r.ID && us[0].CPU > 0
	})
	// Its output comes from the engine.
	logs, err := cl.ReplicaLogs(ctx, r.ID, "stdout", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(logs)
	logs.Close()
	if !strings.Contains(string(out), "listening on 0.0.0.0:") {
		t.Errorf("docker replica logs: %q", out)
	}
	// A missing image is a start error the operator sees.
	bad := webService("", "d1", 1)
	bad.Name = "missing"
	bad.Routes = []api.Route{{PathPrefix: "/missing"}}
	bad.Run = &api.Run{Driver: api.DriverDocker, Image: "herd-test/does-not-exist:1"}
	if _, err := cl.ServicePut(ctx, bad); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "the missing image to be reported", func() bool {
		rs := replicasOf(t, cl, "missing")
		return len(rs) == 1 && rs[0].State == api.ReplicaBackoff && strings.Contains(rs[0].Error, "herd-test/does-not-exist:1")
	})
	if err := cl.ServiceDelete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 20*time.Second, "the container to be removed", func() bool {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=herd.replica="+r.ID).Output()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
}

// TestAutoscaleFollowsRequestRate: a service with target_rps_per_replica
// grows under load through the gateway (up to max) and shrinks back to min
// after the stabilization window once the load stops.
func TestAutoscaleFollowsRequestRate(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
		cfg.Workload.AutoscaleInterval = config.Duration(300 * time.Millisecond)
	}})
	n := c.Nodes[0]
	cl := n.Client(t)
	ctx := testcluster.Ctx(t, 2*time.Minute)
	svc := webService(bin, "v1", 1)
	svc.Run.Autoscale = &api.Autoscale{Min: 1, Max: 3, TargetRPSPerReplica: 5, Window: api.Duration(2 * time.Second)}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 1, "v1")

	// About 50 requests a second: 10 replicas' worth, capped at 3.
	gw := "http://" + n.Agent().GatewayAddr()
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for lctx.Err() == nil {
			<-tick.C
			_, _, _ = get(gw + "/")
		}
	})
	defer func() { stop(); wg.Wait() }()
	waitHealthy(t, cl, "web", 3, "v1")
	e, _, err := cl.ServiceGet(ctx, "web", nil)
	if err != nil || *e.Run.Replicas != 3 {
		t.Fatalf("scaled service: %+v %v", e, err)
	}
	stop()
	wg.Wait()
	waitHealthy(t, cl, "web", 1, "v1")
}

// TestImpossiblePlacementWaitsWithTheReason: a replica no node can take
// waits unplaced, saying why, and is placed once the service asks for
// less.
func TestImpossiblePlacementWaitsWithTheReason(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 1})
	cl := c.Nodes[0].Client(t)
	ctx := testcluster.Ctx(t, time.Minute)
	svc := webService(bin, "v1", 1)
	svc.Run.Resources = &api.Resources{MemoryMB: 16 << 20}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 10*time.Second, "the replica to wait with the reason", func() bool {
		rs := replicasOf(t, cl, "web")
		return len(rs) == 1 && rs[0].Node == "" && rs[0].State == api.ReplicaPending &&
			strings.Contains(rs[0].Error, "no node satisfies: memory 16777216 MiB > free")
	})
	nodes, _, err := cl.Nodes(ctx, nil)
	if err != nil || len(nodes) != 1 || nodes[0].Used.MemoryMB != 0 {
		t.Fatalf("the waiting replica reserved something: %+v %v", nodes, err)
	}
	svc.Run.Resources = &api.Resources{MemoryMB: 32}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, cl, "web", 1, "v1")
}
