//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

// gatewayPort is where every agent's gateway listens in the e2e cluster.
const gatewayPort = 8080

// webService is the e2e service: three replicas of /webserver (the
// image's test backend) on distinct nodes among c1, c2, s2 and s3 (s1
// stays free so that a lost replica always has a node to go to), routed
// at / by every gateway. Its timeouts suit a LAN: a try that has not
// connected in 300 ms or answered in 500 ms goes to another replica (a
// node that was killed or cut off answers nothing at all).
func webService(version string) *api.Service {
	replicas := 3
	return &api.Service{
		Name:        "web",
		Routes:      []api.Route{{PathPrefix: "/"}},
		HealthCheck: &api.HealthCheck{Path: "/health", Interval: api.Duration(500 * time.Millisecond)},
		Timeouts:    &api.Timeouts{Connect: api.Duration(300 * time.Millisecond), Request: api.Duration(5 * time.Second)},
		Retry:       &api.Retry{PerTryTimeout: api.Duration(500 * time.Millisecond)},
		Run: &api.Run{
			Driver:        "exec",
			Command:       "/webserver",
			Env:           map[string]string{"LISTEN_HOST": "0.0.0.0", "VERSION": version},
			Replicas:      &replicas,
			DistinctHosts: true,
			Constraints:   []api.Constraint{{Attribute: "node", Op: "in", Values: []string{"c1", "c2", "s2", "s3"}}},
			Update:        &api.UpdatePolicy{MinHealthyTime: api.Duration(time.Second)},
		},
	}
}

// placement is one look at the web service's replicas.
type placement struct {
	at      time.Time
	healthy map[string]int // running and healthy replicas wanted to run, by node
	running int            // replicas running anywhere (wanted or not): more than 3 is a duplicate
}

func (p placement) total() int {
	n := 0
	for _, c := range p.healthy {
		n += c
	}
	return n
}

// webRun is the web service under test: the placement history and the
// gateway traffic.
type webRun struct {
	r *run

	mu       sync.Mutex
	history  []placement
	requests int
	failures []time.Time
	errs     map[string]int
}

// startWeb deploys the web service, waits for its three replicas to be
// healthy, then records the placement every 200 ms and sends a constant
// stream of GETs through via's gateway until the scenario ends.
func startWeb(r *run, via node) *webRun {
	w := &webRun{r: r, errs: map[string]int{}}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	_, err := r.obs.ServicePut(ctx, webService("v1"))
	cancel()
	if err != nil {
		r.t.Fatalf("deploying web: %v", err)
	}
	waitFor(r.t, 60*time.Second, "3 healthy web replicas", func() bool { return w.look().total() == 3 })
	wctx, stop := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if p, ok := w.read(); ok {
				w.mu.Lock()
				w.history = append(w.history, p)
				w.mu.Unlock()
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	wg.Go(func() { w.traffic(wctx, via) })
	r.t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	return w
}

// look reads the web service's replicas (a stale read, so that it works
// while the leader is away), or an empty placement on an error.
func (w *webRun) look() placement {
	p, _ := w.read()
	return p
}

// read is look, and whether the read worked.
func (w *webRun) read() (placement, bool) {
	p := placement{at: time.Now(), healthy: map[string]int{}}
	ctx, cancel := context.WithTimeout(w.r.ctx, time.Second)
	defer cancel()
	reps, _, err := w.r.obs.Replicas(ctx, "web", "", &api.QueryOptions{Stale: true})
	if err != nil {
		return p, false
	}
	for _, rep := range reps {
		if rep.State == api.ReplicaRunning {
			p.running++
		}
		if rep.Desired == api.DesiredRun && rep.State == api.ReplicaRunning && rep.Health == api.HealthHealthy {
			p.healthy[rep.Node]++
		}
	}
	return p, true
}

// traffic sends GETs through via's gateway, one at a time, counting the
// ones that did not come back 200.
func (w *webRun) traffic(ctx context.Context, via node) {
	hc := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://%s:%d/", via.ip, gatewayPort)
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		why := ""
		switch {
		case err != nil:
			why = "error"
		default:
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				why = fmt.Sprint(resp.StatusCode)
			}
		}
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.requests++
		if why != "" {
			w.failures = append(w.failures, time.Now())
			w.errs[why]++
		}
		w.mu.Unlock()
		if why != "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// hosting returns the nodes that run a healthy web replica now.
func (w *webRun) hosting() []string {
	var out []string
	for n := range w.look().healthy {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// recovered waits until three healthy replicas run again, none on gone,
// and returns how long that took from at.
func (w *webRun) recovered(gone node, at time.Time) time.Duration {
	var took time.Duration
	waitFor(w.r.t, 60*time.Second, "3 healthy web replicas away from "+gone.name, func() bool {
		p := w.look()
		if p.total() == 3 && p.healthy[gone.name] == 0 {
			took = time.Since(at)
			return true
		}
		return false
	})
	return took
}

// settled waits until exactly three replicas run (a node back from a
// partition or a crash must not leave a duplicate running) and returns
// the last placement.
func (w *webRun) settled() placement {
	var p placement
	waitFor(w.r.t, 60*time.Second, "exactly 3 running web replicas", func() bool {
		p = w.look()
		return p.running == 3 && p.total() == 3
	})
	return p
}

// timeline is the number of healthy web replicas over the scenario, as
// its changes: "3 @0.0s, 2 @4.1s, 3 @8.0s".
func (w *webRun) timeline() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	last := -1
	for _, p := range w.history {
		if n := p.total(); n != last {
			parts = append(parts, fmt.Sprintf("%d @%.1fs", n, p.at.Sub(w.history[0].at).Seconds()))
			last = n
		}
	}
	return strings.Join(parts, ", ")
}

// gatewayLine is the report's gateway column: failed of sent, and why.
func (w *webRun) gatewayLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var why []string
	for k, n := range w.errs {
		why = append(why, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(why)
	s := fmt.Sprintf("%d/%d", len(w.failures), w.requests)
	if len(why) > 0 {
		s += " (" + strings.Join(why, ", ") + ")"
	}
	return s
}

// failedFraction is the share of gateway requests that failed.
func (w *webRun) failedFraction() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.requests == 0 {
		return 1
	}
	return float64(len(w.failures)) / float64(w.requests)
}

// victimClient picks the client node that hosts a web replica (c2 if
// both do) and the other client, whose gateway carries the traffic.
func victimClient(t *testing.T, hosting []string) (victim, via node) {
	has := map[string]bool{}
	for _, n := range hosting {
		has[n] = true
	}
	switch {
	case has["c2"]:
		return nodes[4], nodes[3]
	case has["c1"]:
		return nodes[3], nodes[4]
	}
	t.Fatalf("no client node hosts a web replica (hosting: %v)", hosting)
	return node{}, node{}
}

// webScenario runs steps with the web service deployed and reports the
// replica recovery times and the gateway's failed requests; a node kill
// must fail at most 0.1% of the GETs (bar 0 with the gateway's retries).
func webScenario(t *testing.T, name string, steps func(r *run, w *webRun, victim node) []time.Duration) {
	var recoveries []time.Duration
	var w *webRun
	scenarioWith(t, name, func(r *run) {
		// The traffic must go through the client that stays up: pick the
		// victim from where the replicas landed, then start the traffic.
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		_, err := r.obs.ServicePut(ctx, webService("v1"))
		cancel()
		if err != nil {
			r.t.Fatalf("deploying web: %v", err)
		}
		probe := &webRun{r: r}
		waitFor(r.t, 60*time.Second, "3 healthy web replicas", func() bool { return probe.look().total() == 3 })
		victim, via := victimClient(r.t, probe.hosting())
		// From now on the cluster is watched through the client that stays.
		obs := r.c.client(via)
		r.t.Cleanup(func() { obs.Close() })
		r.obs = obs
		w = startWeb(r, via)
		time.Sleep(3 * time.Second)
		recoveries = steps(r, w, victim)
		p := w.settled()
		r.t.Logf("%s: healthy web replicas over time: %s; at the end: %v", name, w.timeline(), p.healthy)
	}, func(rw *row) {
		if len(recoveries) > 0 {
			sort.Slice(recoveries, func(i, j int) bool { return recoveries[i] < recoveries[j] })
			median := recoveries[len(recoveries)/2]
			rw.recovery = median.Round(time.Millisecond).String()
			if median > 5*time.Second {
				t.Errorf("%s: replica recovery median %s, bar 5 s", name, median)
			}
		}
		if w != nil {
			rw.gateway = w.gatewayLine()
			if f := w.failedFraction(); f > 0.001 {
				t.Errorf("%s: %.3f%% of the gateway's GETs failed (%s), bar 0.1%%", name, 100*f, w.gatewayLine())
			}
		}
	})
}

// TestKillClientWithReplica kills a client node that runs a web replica:
// the replica is replaced elsewhere (recovery time), the gateway of the
// other client keeps answering, and when the node comes back its old
// replica does not run beside the replacement.
func TestKillClientWithReplica(t *testing.T) {
	webScenario(t, "kill a client node running a replica", func(r *run, w *webRun, victim node) []time.Duration {
		at := time.Now()
		if _, err := docker(r.ctx, "kill", container(victim)); err != nil {
			r.t.Fatal(err)
		}
		took := w.recovered(victim, at)
		r.t.Logf("replica of %s replaced in %s", victim.name, took.Round(time.Millisecond))
		time.Sleep(2 * time.Second)
		if _, err := docker(r.ctx, "start", container(victim)); err != nil {
			r.t.Fatal(err)
		}
		r.alive(victim)
		return []time.Duration{took}
	})
}

// TestPartitionClientWithReplica cuts a client node that runs a web
// replica off from every other node for 15 s: its replica is replaced;
// after healing, exactly three replicas run (the old one stops).
func TestPartitionClientWithReplica(t *testing.T) {
	webScenario(t, "partition a client running a replica", func(r *run, w *webRun, victim node) []time.Duration {
		var others []node
		for _, n := range nodes {
			if n != victim {
				others = append(others, n)
			}
		}
		at := time.Now()
		if err := partition(r.ctx, victim, others...); err != nil {
			r.t.Fatal(err)
		}
		took := w.recovered(victim, at)
		r.t.Logf("replica of partitioned %s replaced in %s", victim.name, took.Round(time.Millisecond))
		time.Sleep(time.Until(at.Add(15 * time.Second)))
		if err := heal(r.ctx, victim); err != nil {
			r.t.Fatal(err)
		}
		r.alive(victim)
		return []time.Duration{took}
	})
}

// TestKillClientMidRollout starts a rollout to v2 and kills a client
// node that runs a replica while it is under way: the rollout still
// completes, with three healthy v2 replicas.
func TestKillClientMidRollout(t *testing.T) {
	webScenario(t, "kill a client node mid-rollout", func(r *run, w *webRun, victim node) []time.Duration {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		_, err := r.obs.ServicePut(ctx, webService("v2"))
		cancel()
		if err != nil {
			r.t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // the first new replica is starting
		at := time.Now()
		if _, err := docker(r.ctx, "kill", container(victim)); err != nil {
			r.t.Fatal(err)
		}
		took := w.recovered(victim, at)
		waitFor(r.t, 90*time.Second, "the rollout to v2 done: 3 healthy v2 replicas", w.rolledOut)
		r.t.Logf("rollout done %s after the kill of %s", time.Since(at).Round(time.Millisecond), victim.name)
		if _, err := docker(r.ctx, "start", container(victim)); err != nil {
			r.t.Fatal(err)
		}
		r.alive(victim)
		return []time.Duration{took}
	})
}

// rolledOut reports whether the web service's latest rollout is complete
// with three healthy replicas of its current run version.
func (w *webRun) rolledOut() bool {
	ctx, cancel := context.WithTimeout(w.r.ctx, time.Second)
	defer cancel()
	svc, _, err := w.r.obs.ServiceGet(ctx, "web", &api.QueryOptions{Stale: true})
	if err != nil || svc == nil || svc.Rollout == nil || svc.Rollout.State != api.RolloutComplete {
		return false
	}
	reps, _, err := w.r.obs.Replicas(ctx, "web", "", &api.QueryOptions{Stale: true})
	if err != nil {
		return false
	}
	n := 0
	for _, rep := range reps {
		if rep.Desired == api.DesiredRun && rep.State == api.ReplicaRunning && rep.Health == api.HealthHealthy && rep.Version == svc.RunVersion {
			n++
		}
	}
	return n == 3
}
