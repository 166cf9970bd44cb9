package exec

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	osexec "os/exec"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/internal/driver"

	"github.com/herd-cluster/herd/internal/procfs"
)

// Defaults for a task that leaves them zero.
const (
	defaultStopSignal  = syscall.SIGTERM
	defaultKillTimeout = 10 * time.Second
)

// stopPollInterval is how often Stop looks whether the replica is gone.
const stopPollInterval = 50 * time.Millisecond

// cgroupRemoveWait is how long Stop waits for an emptied cgroup to go.
const cgroupRemoveWait = 2 * time.Second

// errUnknownExit is the Exit.Err of a recovered process: only its parent
// could read how it ended.
var errUnknownExit = errors.New("exit status unknown: the process was not started by this agent")

// handle is one started or recovered replica.
type handle struct {
	log         *slog.Logger
	id          string
	stopSignal  syscall.Signal
	killTimeout time.Duration
	st          state
	blob        []byte
	enforced    bool
	// cmd is the started process; nil for a recovered one, which is not
	// the agent's child.
	cmd *osexec.Cmd
	// usePidfd is false to watch the process through /proc only (tests).
	usePidfd bool

	// done is closed once the exit is known; exit is valid after that.
	done chan struct{}
	exit driver.Exit
	// reap admits one goroutine at a time to read the exit once the
	// process has ended (for a child: to reap it, which frees its pid).
	reap chan struct{}
	// stopping admits one Stop at a time.
	stopping chan struct{}
}

func (d *Driver) newHandle(t driver.Task, st state, cmd *osexec.Cmd) *handle {
	h := &handle{
		log:         d.log,
		id:          t.ID,
		stopSignal:  t.StopSignal,
		killTimeout: t.KillTimeout,
		st:          st,
		enforced:    st.Cgroup != "" && cgroupExists(st.Cgroup),
		cmd:         cmd,
		usePidfd:    true,
		done:        make(chan struct{}),
		reap:        make(chan struct{}, 1),
		stopping:    make(chan struct{}, 1),
	}
	if h.stopSignal == 0 {
		h.stopSignal = defaultStopSignal
	}
	if h.killTimeout <= 0 {
		h.killTimeout = defaultKillTimeout
	}
	h.blob, _ = json.Marshal(st) // a struct of numbers and a string
	return h
}

// State returns the JSON blob Recover needs: pid, start time, process
// group and cgroup.
func (h *handle) State() []byte { return h.blob }

// Enforced reports whether the replica runs in a cgroup with its CPU and
// memory limits.
func (h *handle) Enforced() bool { return h.enforced }

// CPUTime is the CPU time of the process and of the children it reaped.
func (h *handle) CPUTime() (time.Duration, bool) {
	s, err := procfs.ReadStat(h.st.PID)
	if err != nil || s.StartTime != h.st.StartTime || s.Dead() {
		return 0, false
	}
	return s.CPUTime(), true
}

// Wait blocks until the replica's process ends or ctx ends, and returns
// how it ended (for a recovered process: Code -1 and an Err saying the
// status is unknown). It may be called any number of times, also
// concurrently; all see the same Exit. The error is ctx's when it ended
// first.
func (h *handle) Wait(ctx context.Context) (driver.Exit, error) {
	select {
	case <-h.done:
		return h.exit, nil
	default:
	}
	// The pid stays ours until the child is reaped, which happens only
	// after done is closed, so watching it by pid is safe until then.
	if err := waitEnd(ctx, h.st.PID, h.st.StartTime, h.usePidfd); err != nil {
		select {
		case <-h.done: // ended while we were told to stop waiting
			return h.exit, nil
		default:
			return driver.Exit{}, err
		}
	}
	return h.finish(ctx)
}

// finish reads the exit of the ended process once and publishes it.
func (h *handle) finish(ctx context.Context) (driver.Exit, error) {
	select {
	case h.reap <- struct{}{}:
		defer func() { <-h.reap }()
	case <-h.done:
		return h.exit, nil
	case <-ctx.Done():
		return driver.Exit{}, ctx.Err()
	}
	select {
	case <-h.done:
		return h.exit, nil
	default:
	}
	exit := driver.Exit{Code: -1, Err: errUnknownExit}
	if h.cmd != nil {
		// The child has ended, so this returns at once.
		_ = h.cmd.Wait()
		exit = exitOf(h.cmd)
	}
	h.exit = exit
	close(h.done)
	h.log.Debug("replica ended", "task", h.id, "pid", h.st.PID, "code", exit.Code, "signal", exit.Signal)
	if h.st.Cgroup != "" {
		// Fails while something the replica left behind still runs in
		// it; Stop kills that and removes the cgroup.
		_ = removeCgroup(h.st.Cgroup, 0)
	}
	return exit, nil
}

// exitOf is the Exit of a reaped command.
func exitOf(cmd *osexec.Cmd) driver.Exit {
	ps := cmd.ProcessState
	if ps == nil {
		return driver.Exit{Code: -1, Err: errors.New("exit status not collected")}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return driver.Exit{Code: -1, Signal: ws.Signal()}
	}
	return driver.Exit{Code: ps.ExitCode()}
}

// ended reports whether the leader process has ended.
func (h *handle) ended() bool {
	select {
	case <-h.done:
		return true
	default:
		return !running(h.st.PID, h.st.StartTime)
	}
}

// gone reports whether nothing of the replica runs: the leader has ended
// and its process group and cgroup are empty.
func (h *handle) gone() bool {
	if !h.ended() || len(groupMembers(h.st.PGID, h.st.StartTime)) > 0 {
		return false
	}
	return h.st.Cgroup == "" || len(cgroupProcs(h.st.Cgroup)) == 0
}

// signal sends sig to the replica's process group, and to the leader if it
// has left the group, followed by SIGCONT so that a stopped process acts
// on it.
func (h *handle) signal(sig syscall.Signal) {
	send := func(s syscall.Signal) {
		if stat, err := procfs.ReadStat(h.st.PID); err == nil && stat.StartTime == h.st.StartTime && !stat.Dead() && stat.Pgrp != h.st.PGID {
			_ = syscall.Kill(h.st.PID, s)
		}
		if !h.ended() || len(groupMembers(h.st.PGID, h.st.StartTime)) > 0 {
			_ = syscall.Kill(-h.st.PGID, s)
		}
	}
	send(sig)
	if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
		send(syscall.SIGCONT)
	}
}

// killLeftovers kills what remains of the replica (its group and cgroup)
// and removes its cgroup.
func (h *handle) killLeftovers() {
	h.signal(syscall.SIGKILL)
	if h.st.Cgroup != "" {
		killCgroup(h.st.Cgroup)
		if err := removeCgroup(h.st.Cgroup, cgroupRemoveWait); err != nil {
			h.log.Warn("exec driver: cgroup left behind", "task", h.id, "err", err)
		}
	}
}

// Stop sends the stop signal to the replica's process group, waits up to
// the kill timeout for the group to end, then kills the group (and
// everything in the replica's cgroup). It returns nil once the replica is
// gone, at once if it was, and ctx's error if ctx ends first, without
// escalating; calling it again continues. Concurrent calls run one after
// the other.
func (h *handle) Stop(ctx context.Context) error {
	select {
	case h.stopping <- struct{}{}:
		defer func() { <-h.stopping }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if !h.gone() {
		h.signal(h.stopSignal)
		if err := h.waitGone(ctx, h.killTimeout); err != nil {
			return err
		}
	}
	if !h.gone() {
		h.log.Info("replica did not stop in time; killing it", "task", h.id, "pid", h.st.PID, "kill_timeout", h.killTimeout)
		h.signal(syscall.SIGKILL)
		if h.st.Cgroup != "" {
			killCgroup(h.st.Cgroup)
		}
		if err := h.waitGone(ctx, 0); err != nil {
			return err
		}
	}
	if _, err := h.Wait(ctx); err != nil { // reaps the child
		return err
	}
	if h.st.Cgroup != "" {
		if err := removeCgroup(h.st.Cgroup, cgroupRemoveWait); err != nil {
			h.log.Warn("exec driver: cgroup left behind", "task", h.id, "err", err)
		}
	}
	return nil
}

// waitGone polls until the replica is gone, for at most limit (0: no
// limit), or until ctx ends, whose error it then returns. It returns nil
// at the limit.
func (h *handle) waitGone(ctx context.Context, limit time.Duration) error {
	var expire <-chan time.Time
	if limit > 0 {
		tm := time.NewTimer(limit)
		defer tm.Stop()
		expire = tm.C
	}
	t := time.NewTicker(stopPollInterval)
	defer t.Stop()
	for !h.gone() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-expire:
			return nil
		case <-t.C:
		}
	}
	return nil
}
