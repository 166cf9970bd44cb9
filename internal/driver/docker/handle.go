package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/herd-cluster/herd/internal/driver"
	"github.com/herd-cluster/herd/internal/procfs"
)

// maxSignal is the highest signal number on Linux; exit codes 129 to
// 128+maxSignal are read as "killed by signal code-128", the convention of
// the engine (and of shells) for a main process that died of a signal.
const maxSignal = 64

// handle is one container started or re-attached by the driver.
type handle struct {
	d     *Driver
	id    string
	name  string
	state []byte
	// pid is the container's main process on the host (0 if unknown).
	pid int
	// signal ("" for the container's) and timeout are Stop's.
	signal  string
	timeout int

	// stopMu serialises Stop, so that a second Stop waits for the first
	// instead of meeting a removal in progress.
	stopMu sync.Mutex

	// mu guards exit and exited.
	mu sync.Mutex
	// exit is how the container ended, once seen by Wait or Stop; kept
	// because the container (and its status) is gone after Stop.
	exit   driver.Exit
	exited bool
}

func (d *Driver) handle(t driver.Task, id string, pid int) *handle {
	name := containerName(t.ID)
	// Marshalling two strings cannot fail.
	blob, _ := json.Marshal(state{ID: id, Name: name})
	return &handle{
		d: d, id: id, name: name, state: blob, pid: pid,
		signal:  signalName(t.StopSignal),
		timeout: stopSeconds(t.KillTimeout),
	}
}

// State returns the blob Recover and Logs take: the container's ID and name.
func (h *handle) State() []byte { return h.state }

// CPUTime is the CPU time of the container's main process and of the
// children it reaped, read from the host's /proc (the engine's own
// statistics cost a request per sample).
func (h *handle) CPUTime() (time.Duration, bool) {
	if h.pid <= 0 {
		return 0, false
	}
	s, err := procfs.ReadStat(h.pid)
	if err != nil || s.Dead() {
		return 0, false
	}
	return s.CPUTime(), true
}

// Enforced reports true: the engine applies the CPU and memory limits.
func (h *handle) Enforced() bool { return true }

// Wait blocks until the container is no longer running or ctx ends. It may
// be called any number of times, also after Stop. A container removed
// before its end was seen yields Exit.Err wrapping driver.ErrGone.
func (h *handle) Wait(ctx context.Context) (driver.Exit, error) {
	if e, ok := h.seen(); ok {
		return e, nil
	}
	// The request is bound to ctx: when ctx ends, the client's goroutine
	// fails to read the answer and reports on Error, so receiving from one
	// of the two channels always ends it.
	res := h.d.cli.ContainerWait(ctx, h.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-res.Result:
		e := exitOf(int(r.StatusCode))
		if r.Error != nil && r.Error.Message != "" {
			e.Err = fmt.Errorf("docker: container %s: %s", h.name, r.Error.Message)
		}
		return h.see(e), nil
	case err := <-res.Error:
		if ctx.Err() != nil {
			return driver.Exit{}, fmt.Errorf("docker: wait for container %s: %w", h.name, ctx.Err())
		}
		if cerrdefs.IsNotFound(err) {
			if e, ok := h.seen(); ok { // Stop saw the end, then removed it
				return e, nil
			}
			return driver.Exit{Code: -1, Err: fmt.Errorf("docker: container %s was removed: %w", h.name, driver.ErrGone)}, nil
		}
		return driver.Exit{}, fmt.Errorf("docker: wait for container %s: %w", h.name, err)
	}
}

// Stop asks the engine to stop the container (the task's stop signal, then
// SIGKILL after its kill timeout), records how it ended and removes it. A
// container already gone is not an error.
func (h *handle) Stop(ctx context.Context) error {
	h.stopMu.Lock()
	defer h.stopMu.Unlock()
	timeout := h.timeout
	// Stopping a container that is not running is a no-op for the engine.
	_, err := h.d.cli.ContainerStop(ctx, h.id, client.ContainerStopOptions{Signal: h.signal, Timeout: &timeout})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("docker: stop container %s: %w", h.name, err)
	}
	info, err := h.d.cli.ContainerInspect(ctx, h.id, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("docker: inspect container %s: %w", h.name, err)
	}
	if s := info.Container.State; s != nil && !s.Running {
		h.see(exitOf(s.ExitCode))
	}
	if err := h.d.remove(ctx, h.id); err != nil {
		return fmt.Errorf("docker: remove container %s: %w", h.name, err)
	}
	return nil
}

// seen returns the recorded end, if any.
func (h *handle) seen() (driver.Exit, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exit, h.exited
}

// see records e unless an end was recorded already, and returns the
// recorded one.
func (h *handle) see(e driver.Exit) driver.Exit {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.exited {
		h.exit, h.exited = e, true
	}
	return h.exit
}

// exitOf reads a container's exit code: 128+n is signal n (Code -1), as
// the engine reports a main process killed by a signal.
func exitOf(code int) driver.Exit {
	if code > 128 && code <= 128+maxSignal {
		return driver.Exit{Code: -1, Signal: syscall.Signal(code - 128)}
	}
	return driver.Exit{Code: code}
}
