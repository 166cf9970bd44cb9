package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/controller"
	"github.com/herd-cluster/herd/internal/driver"
	"github.com/herd-cluster/herd/internal/driver/docker"
	execdriver "github.com/herd-cluster/herd/internal/driver/exec"
	"github.com/herd-cluster/herd/internal/logfile"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// controllerTask is the leader task that reconciles replicas.
func (a *Agent) controllerTask() func(ctx context.Context) {
	return func(ctx context.Context) {
		c := controller.New(controller.Config{
			NodeGrace: a.cfg.Workload.NodeGrace.D(),
			Logger:    a.logger.With("component", "controller"),
		}, a.server)
		c.Run(ctx)
	}
}

// autoscalerTask is the leader task that scales services with an
// autoscale section.
func (a *Agent) autoscalerTask() func(ctx context.Context) {
	return func(ctx context.Context) {
		controller.NewAutoscaler(controller.AutoscaleConfig{
			Interval: a.cfg.Workload.AutoscaleInterval.D(),
			Logger:   a.logger.With("component", "autoscaler"),
		}, a.server, clusterMetrics{a}).Run(ctx)
	}
}

// clusterMetrics reads the load from every live agent's API.
type clusterMetrics struct{ a *Agent }

// each calls f with a client of every live agent, at most 2 s each, and
// returns the first error if no agent answered.
func (m clusterMetrics) each(ctx context.Context, f func(ctx context.Context, c *api.Client) error) error {
	var firstErr error
	answered := 0
	for _, mem := range m.a.gossip.Members() {
		if mem.Status != api.MemberAlive || mem.APIAddr == "" {
			continue
		}
		c, err := m.a.apiClient(mem.APIAddr)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = f(cctx, c)
		cancel()
		c.Close()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("agent %s: %w", mem.Name, err)
			}
			continue
		}
		answered++
	}
	if answered == 0 && firstErr != nil {
		return firstErr
	}
	return nil
}

func (m clusterMetrics) Gateways(ctx context.Context) ([][]api.GatewayService, error) {
	var out [][]api.GatewayService
	err := m.each(ctx, func(ctx context.Context, c *api.Client) error {
		gw, err := c.GatewayServices(ctx)
		if err == nil {
			out = append(out, gw)
		}
		return err
	})
	return out, err
}

func (m clusterMetrics) ReplicaCPU(ctx context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	err := m.each(ctx, func(ctx context.Context, c *api.Client) error {
		us, err := c.AgentReplicas(ctx)
		for _, u := range us {
			out[u.ID] = u.CPU
		}
		return err
	})
	return out, err
}

// replicaUsage reports this agent's replicas' use for the API.
func (a *Agent) replicaUsage() []api.ReplicaUsage {
	if a.supervisor == nil {
		return nil
	}
	return a.supervisor.Usage()
}

// startWorkload registers this node and runs its supervisor, unless
// workloads are disabled.
func (a *Agent) startWorkload(ctx context.Context, apiAddr string) error {
	w := a.cfg.Workload
	if w.Disabled {
		return nil
	}
	client, err := a.apiClient(apiAddr)
	if err != nil {
		return err
	}
	a.wlClient = client
	drivers := map[string]driver.Driver{
		api.DriverExec: execdriver.New(execdriver.Config{Logger: a.logger.With("component", "exec")}),
	}
	dd, err := docker.New(w.DockerHost)
	if err != nil {
		a.logger.Warn("docker driver unavailable", "err", err)
	} else {
		a.docker = dd
		drivers[api.DriverDocker] = dd
	}
	a.registerNodeMetrics()
	a.supervisor = supervisor.New(supervisor.Config{
		Node:    a.cfg.NodeName,
		Dir:     filepath.Join(a.dataDir, "replicas"),
		Drivers: drivers,
		Fetch: func(ctx context.Context, index uint64) (uint64, []*api.Replica, error) {
			// A consistent read: a stale one from a server still replaying
			// its log would look like "run nothing" and stop every replica.
			list, meta, err := client.Replicas(ctx, "", a.cfg.NodeName, &api.QueryOptions{WaitIndex: index, WaitTime: time.Minute})
			if err != nil {
				return 0, nil, err
			}
			return meta.Index, list, nil
		},
		Report: func(ctx context.Context, st []api.ReplicaStatus) error {
			return client.NodeReport(ctx, a.cfg.NodeName, st)
		},
		StopOnExit: w.StopOnExit,
		Logger:     a.logger.With("component", "supervisor"),
	})
	a.goFunc(func() { a.registerLoop(ctx, client, drivers) })
	a.goFunc(func() {
		if err := a.supervisor.Run(ctx); err != nil {
			a.logger.Error("supervisor stopped", "err", err)
		}
	})
	return nil
}

// registerLoop records this node in the cluster state, retrying until it
// succeeds, and again whenever what it offers changes (a Docker engine
// that comes or goes).
func (a *Agent) registerLoop(ctx context.Context, client *api.Client, drivers map[string]driver.Driver) {
	var last *api.Node
	delay := 200 * time.Millisecond
	for ctx.Err() == nil {
		n := a.nodeInfo(ctx, drivers)
		if last == nil || !sameNode(last, n) {
			if err := client.NodeRegister(ctx, n); err != nil {
				if ctx.Err() == nil {
					a.logger.Debug("registering node", "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(delay):
				}
				delay = min(2*delay, 5*time.Second)
				continue
			}
			a.logger.Info("node registered", "drivers", n.Drivers, "cpu", n.Resources.CPU, "memory_mb", n.Resources.MemoryMB)
			last, delay = n, 200*time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
		}
	}
}

func sameNode(a, b *api.Node) bool {
	return a.Address == b.Address && a.Zone == b.Zone && a.Resources == b.Resources && a.CgroupV2 == b.CgroupV2 &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Drivers, b.Drivers)
}

// nodeInfo describes what this node offers.
func (a *Agent) nodeInfo(ctx context.Context, drivers map[string]driver.Driver) *api.Node {
	w := a.cfg.Workload
	n := &api.Node{
		Name: a.cfg.NodeName, Zone: a.cfg.Zone, Labels: a.cfg.Labels, Address: a.advertise,
		Drivers: map[string]string{},
		Resources: api.NodeResources{
			CPU: w.CPU, MemoryMB: w.MemoryMB, PortMin: w.PortMin, PortMax: w.PortMax,
		},
	}
	if n.Resources.CPU == 0 {
		n.Resources.CPU = runtime.NumCPU() * 1000
	}
	if n.Resources.MemoryMB == 0 {
		n.Resources.MemoryMB = totalMemoryMB()
	}
	for _, name := range []string{api.DriverExec, api.DriverDocker} {
		d, ok := drivers[name]
		if !ok {
			n.Drivers[name] = "not configured"
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := d.Available(actx); err != nil {
			n.Drivers[name] = err.Error()
		} else {
			n.Drivers[name] = ""
		}
		cancel()
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	n.CgroupV2 = err == nil
	return n
}

// totalMemoryMB reads the machine's memory from /proc/meminfo (0 if it
// cannot).
func totalMemoryMB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb / 1024
		}
	}
	return 0
}

// replicaLogs serves a replica's logs for the API: from its files (exec)
// or from the engine (docker).
func (a *Agent) replicaLogs(ctx context.Context, w io.Writer, id, stream string, tail int, follow bool) error {
	if a.supervisor == nil {
		return fmt.Errorf("this agent runs no replicas")
	}
	if rc, err := a.supervisor.DriverLogs(ctx, id, follow); err == nil {
		// The driver keeps the output (docker): both streams, merged.
		defer rc.Close()
		return copyFlushing(w, rc, tail, follow)
	} else if !errors.Is(err, driver.ErrNoLogs) && !supervisor.IsNoReplica(err) {
		return err
	}
	files, err := a.supervisor.LogFiles(id, stream)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("replica %q has written no %s yet", id, stream)
	}
	// Following starts where the tail ended: no gap, no repeat.
	size, err := logfile.Tail(w, files, tail) // tail 0: everything
	if err != nil {
		return err
	}
	if fl, ok := w.(interface{ Flush() }); ok {
		fl.Flush()
	}
	if !follow {
		return nil
	}
	if err := logfile.FollowFrom(ctx, files[len(files)-1], size, w); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// closeWorkload releases the workload clients once every goroutine that
// used them has stopped.
func (a *Agent) closeWorkload() {
	if a.wlClient != nil {
		a.wlClient.Close()
	}
	if a.docker != nil {
		_ = a.docker.Close()
	}
}

// copyFlushing copies a driver's log stream to w, flushing as it goes so
// that a followed stream reaches the client. With tail > 0 and no follow
// it sends only the last tail lines; a followed stream is sent whole (the
// engine keeps at most 30 MiB of it).
func copyFlushing(w io.Writer, r io.Reader, tail int, follow bool) error {
	if tail > 0 && !follow {
		var lines []string
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > tail {
				lines = lines[1:]
			}
		}
		if err := sc.Err(); err != nil {
			return err
		}
		for _, l := range lines {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
		return nil
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// registerNodeMetrics exports what this node offers its replicas and what
// they use.
func (a *Agent) registerNodeMetrics() {
	w := a.cfg.Workload
	cpu, mem := w.CPU, w.MemoryMB
	if cpu == 0 {
		cpu = runtime.NumCPU() * 1000
	}
	if mem == 0 {
		mem = totalMemoryMB()
	}
	gauge := func(name, help string, f func() float64) {
		a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("herd_node_cpu_capacity_millicores", "CPU this node offers to replicas, in millicores.", func() float64 { return float64(cpu) })
	gauge("herd_node_memory_capacity_bytes", "Memory this node offers to replicas.", func() float64 { return float64(mem) * (1 << 20) })
	gauge("herd_node_replicas", "Replicas this node's supervisor runs.", func() float64 { return float64(len(a.replicaUsage())) })
	gauge("herd_node_replica_cpu_millicores", "CPU the replicas of this node use, in millicores, over the last few seconds.", func() float64 {
		var sum float64
		for _, u := range a.replicaUsage() {
			sum += u.CPU
		}
		return sum
	})
}
