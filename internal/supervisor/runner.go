package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/driver"
	"github.com/herd-cluster/herd/internal/health"
	"github.com/herd-cluster/herd/internal/spec"
)

// runner keeps one replica running.
type runner struct {
	s    *Supervisor
	rep  *api.Replica
	drv  driver.Driver
	task driver.Task
	run_ *api.Run
	chk  *health.CheckSpec
	dir  string

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	status api.ReplicaStatus
	// live is the handle of the running replica (nil when it does not
	// run), for its CPU use.
	live driver.Handle
}

// finished returns a runner for a replica that does not run here and
// only reports state.
func finished(r *api.Replica, state string) *runner {
	rn := &runner{rep: r, stopCh: make(chan struct{}), done: make(chan struct{})}
	rn.status = api.ReplicaStatus{ID: r.ID, State: state, Health: api.HealthUnknown}
	close(rn.done)
	rn.stopOnce.Do(func() { close(rn.stopCh) })
	return rn
}

func (s *Supervisor) newRunner(r *api.Replica) *runner {
	run := spec.RunDefaults(r.Run)
	rn := &runner{
		s: s, rep: r, run_: run, dir: s.replicaDir(r.ID),
		stopCh: make(chan struct{}), done: make(chan struct{}),
		status: api.ReplicaStatus{ID: r.ID, State: api.ReplicaPending, Health: api.HealthUnknown},
	}
	if r.Check != nil {
		rn.chk = spec.CheckSpec(r.Check)
	}
	rn.drv = s.cfg.Drivers[run.Driver]
	rn.task = taskFor(r, run, rn.dir)
	return rn
}

// taskFor builds the driver task of a replica: ports in the environment
// and substituted into the arguments.
func taskFor(r *api.Replica, run *api.Run, dir string) driver.Task {
	env := map[string]string{}
	for k, v := range run.Env {
		env[k] = v
	}
	env["HERD_REPLICA_ID"] = r.ID
	env["HERD_SERVICE"] = r.Service
	env["HERD_NODE"] = r.Node
	var pairs []string
	for i, p := range run.Ports {
		port := strconv.Itoa(r.Ports[p.Name])
		name := "HERD_PORT_" + strings.ToUpper(p.Name)
		env[name] = port
		pairs = append(pairs, "${"+name+"}", port)
		if i == 0 {
			env["PORT"] = port
			pairs = append(pairs, "${PORT}", port)
		}
	}
	rep := strings.NewReplacer(pairs...)
	args := make([]string, len(run.Args))
	for i, a := range run.Args {
		args[i] = rep.Replace(a)
	}
	cports := map[string]int{}
	for _, p := range run.Ports {
		if p.ContainerPort != 0 {
			cports[p.Name] = p.ContainerPort
		}
	}
	sig, _ := spec.Signal(run.StopSignal)
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	work := run.WorkDir
	if work == "" && run.Driver == api.DriverExec {
		// A container keeps its image's working directory.
		work = filepath.Join(dir, "work")
	}
	res := r.Resources
	return driver.Task{
		ID: r.ID, Service: r.Service, Command: run.Command, Args: args, Env: env,
		WorkDir: work, User: run.User, Image: run.Image, Ports: r.Ports, ContainerPorts: cports,
		StopSignal: sig, KillTimeout: run.KillTimeout.D(), CPU: res.CPU, MemoryMB: res.MemoryMB,
		LogDir: filepath.Join(dir, "logs"),
	}
}

func (rn *runner) requestStop() { rn.stopOnce.Do(func() { close(rn.stopCh) }) }

func (rn *runner) finished() bool {
	select {
	case <-rn.done:
		return true
	default:
		return false
	}
}

func (rn *runner) alive() bool {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return rn.live != nil
}

func (rn *runner) snapshot() api.ReplicaStatus {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return rn.status
}

// update changes the reported status under the lock and tells the
// reporter.
func (rn *runner) update(f func(st *api.ReplicaStatus)) {
	rn.mu.Lock()
	f(&rn.status)
	rn.mu.Unlock()
	if rn.s != nil {
		rn.s.notify()
	}
}

// run keeps the replica running until it is asked to stop or ctx ends
// (the agent stops: the replica is left running). h is a re-attached
// handle, nil to start afresh.
func (rn *runner) run(ctx context.Context, h driver.Handle) {
	defer close(rn.done)
	if rn.drv == nil {
		rn.update(func(st *api.ReplicaStatus) {
			st.State, st.Error = api.ReplicaFailed, fmt.Sprintf("driver %q is not available on this node", rn.run_.Driver)
		})
		select {
		case <-rn.stopCh:
		case <-ctx.Done():
		}
		return
	}
	p := rn.run_.Restart
	delay := p.Delay.D()
	streak := 0
	for {
		if h == nil {
			var err error
			h, err = rn.start(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				rn.update(func(st *api.ReplicaStatus) {
					st.State, st.Health, st.Error = api.ReplicaBackoff, api.HealthUnknown, err.Error()
				})
				if !rn.backoff(ctx, &delay, &streak, 0) {
					return
				}
				continue
			}
		}
		started := time.Now()
		exit, stopped := rn.supervise(ctx, h)
		h = nil
		if ctx.Err() != nil && !stopped {
			return // the agent stops; the replica keeps running
		}
		if stopped {
			_ = os.Remove(filepath.Join(rn.dir, "replica.json"))
			rn.update(func(st *api.ReplicaStatus) {
				st.State, st.Health, st.HealthySince = api.ReplicaStopped, api.HealthUnknown, time.Time{}
			})
			return
		}
		code := exit.Code
		msg := exitMessage(exit)
		rn.update(func(st *api.ReplicaStatus) {
			st.ExitCode, st.Error, st.Health, st.HealthySince = &code, msg, api.HealthUnknown, time.Time{}
		})
		switch {
		case p.Policy == api.RestartNever, p.Policy == api.RestartOnFailure && code == 0 && exit.Err == nil:
			state := api.ReplicaStopped
			if code != 0 {
				state = api.ReplicaFailed
			}
			_ = os.Remove(filepath.Join(rn.dir, "replica.json"))
			rn.update(func(st *api.ReplicaStatus) { st.State = state })
			select {
			case <-rn.stopCh:
			case <-ctx.Done():
			}
			return
		}
		if !rn.backoff(ctx, &delay, &streak, time.Since(started)) {
			return
		}
	}
}

// backoff waits before the next start: the delay doubles with every
// restart that came sooner than reset_after, up to max_delay. It returns
// false when the replica must not start again.
func (rn *runner) backoff(ctx context.Context, delay *time.Duration, streak *int, ran time.Duration) bool {
	p := rn.run_.Restart
	if ran >= p.ResetAfter.D() {
		*delay, *streak = p.Delay.D(), 0
	}
	*streak++
	wait := *delay
	*delay = min(2**delay, p.MaxDelay.D())
	crash := *streak >= p.CrashLoopAfter
	rn.update(func(st *api.ReplicaStatus) {
		st.State, st.CrashLoop = api.ReplicaBackoff, crash
		st.Restarts++
	})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-rn.stopCh:
		rn.update(func(st *api.ReplicaStatus) { st.State = api.ReplicaStopped })
		return false
	case <-t.C:
		return true
	}
}

// start starts the replica and records it on disk.
func (rn *runner) start(ctx context.Context) (driver.Handle, error) {
	if err := os.MkdirAll(rn.dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica dir: %w", err)
	}
	h, err := rn.drv.Start(ctx, rn.task)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(record{Replica: rn.rep, State: h.State()})
	if err == nil {
		err = writeFileAtomic(filepath.Join(rn.dir, "replica.json"), data)
	}
	if err != nil {
		rn.s.logger.Warn("recording replica", "replica", rn.rep.ID, "err", err)
	}
	return h, nil
}

// supervise watches a started replica: health checks while it runs, until
// it exits or is asked to stop (then it stops it). stopped reports the
// latter.
func (rn *runner) supervise(ctx context.Context, h driver.Handle) (exit driver.Exit, stopped bool) {
	now := time.Now().UTC()
	state := api.ReplicaStarting
	health := api.HealthUnknown
	var since time.Time
	if rn.chk == nil {
		state, health, since = api.ReplicaRunning, api.HealthHealthy, now
	}
	rn.mu.Lock()
	rn.live = h
	rn.mu.Unlock()
	defer func() {
		rn.mu.Lock()
		rn.live = nil
		rn.mu.Unlock()
	}()
	rn.update(func(st *api.ReplicaStatus) {
		st.State, st.Health, st.StartedAt, st.HealthySince, st.Error, st.Enforced = state, health, now, since, "", h.Enforced()
	})

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited := make(chan driver.Exit, 1)
	go func() {
		e, err := h.Wait(wctx)
		if err != nil {
			return
		}
		exited <- e
	}()
	checkDone := make(chan struct{})
	if rn.chk != nil {
		go func() { defer close(checkDone); rn.checkLoop(wctx) }()
	} else {
		close(checkDone)
	}
	defer func() { cancel(); <-checkDone }()

	select {
	case e := <-exited:
		return e, false
	case <-rn.stopCh:
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), rn.task.KillTimeout+10*time.Second)
		defer scancel()
		if err := h.Stop(sctx); err != nil {
			rn.s.logger.Warn("stopping replica", "replica", rn.rep.ID, "err", err)
		}
		return driver.Exit{}, true
	case <-ctx.Done():
		return driver.Exit{}, false
	}
}

// checkLoop runs the health check on the check's interval, with its rise
// and fall thresholds, and reports transitions.
func (rn *runner) checkLoop(ctx context.Context) {
	c := rn.chk
	port := 0
	if len(rn.run_.Ports) > 0 {
		port = rn.rep.Ports[rn.run_.Ports[0].Name]
	}
	host := rn.rep.Address
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ok, bad := 0, 0
	healthy := false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := rn.s.prober.Probe(ctx, addr, c)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			ok, bad = ok+1, 0
		} else {
			ok, bad = 0, bad+1
		}
		switch {
		case !healthy && ok >= c.Rise, !healthy && ok >= 1 && rn.firstCheck():
			healthy = true
			rn.update(func(st *api.ReplicaStatus) {
				st.State, st.Health, st.HealthySince, st.Error = api.ReplicaRunning, api.HealthHealthy, time.Now().UTC(), ""
			})
		case healthy && bad >= c.Fall:
			healthy = false
			msg := err.Error()
			rn.update(func(st *api.ReplicaStatus) {
				st.Health, st.HealthySince, st.Error = api.HealthUnhealthy, time.Time{}, "health check: "+msg
			})
		case !healthy && err != nil && bad >= c.Fall:
			msg := err.Error()
			rn.update(func(st *api.ReplicaStatus) {
				st.Health, st.Error = api.HealthUnhealthy, "health check: "+msg
			})
		}
		t.Reset(c.Interval)
	}
}

// firstCheck reports whether the replica has never been healthy since it
// started: its first passing check makes it healthy at once, so that a new
// replica takes traffic without waiting for rise checks.
func (rn *runner) firstCheck() bool {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return rn.status.Health == api.HealthUnknown
}

func exitMessage(e driver.Exit) string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.Signal != 0:
		return fmt.Sprintf("killed by signal %s", e.Signal)
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that a crash leaves the old or the new record, never half.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
