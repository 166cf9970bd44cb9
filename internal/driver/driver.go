// Package driver starts, watches and stops one node's replicas: exec runs a
// process, docker a container of a local image. The supervisor is the only
// caller; a driver knows nothing about the cluster.
//
// A replica must outlive the agent that started it (an agent restart must
// not restart its work), so a driver keeps what it needs to find a replica
// again in a small state blob the supervisor stores, and Recover re-attaches
// to it.
package driver

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"
)

// Task is everything a driver needs to start one replica.
type Task struct {
	// ID is the replica ID; unique on the node, safe in file names.
	ID string
	// Service is the service's name (for labels and logs).
	Service string
	// Command, Args, Env, WorkDir and User are the run spec's, with the
	// ports already substituted in Args. Env holds only what the spec and
	// herd add ($PORT, $HERD_PORT_<NAME>, $HERD_REPLICA_ID, ...).
	Command string
	Args    []string
	Env     map[string]string
	WorkDir string
	User    string
	// Image is the docker image (docker only).
	Image string
	// Ports are the allocated host ports by name; ContainerPorts the
	// container side for docker (a missing name maps to the same number).
	Ports          map[string]int
	ContainerPorts map[string]int
	// StopSignal is sent first on Stop; KillTimeout later SIGKILL.
	StopSignal  syscall.Signal
	KillTimeout time.Duration
	// CPU (millicores) and MemoryMB are enforced where the driver can.
	CPU      int
	MemoryMB int
	// LogDir is the directory for the replica's stdout and stderr files
	// (exec: "stdout.log" and "stderr.log", opened with O_APPEND so that
	// the process keeps writing while herd rotates them).
	LogDir string
}

// Exit is how a replica ended.
type Exit struct {
	// Code is the exit code, -1 when killed by a signal or unknown.
	Code int
	// Signal is the signal that killed it, 0 if none.
	Signal syscall.Signal
	// Err is set when the end could not be observed (e.g. a re-attached
	// process, whose exit status is not ours to read).
	Err error
}

// Handle is one started (or re-attached) replica.
type Handle interface {
	// State is the blob Recover needs to find the replica again.
	State() []byte
	// Wait blocks until the replica ends or ctx ends.
	Wait(ctx context.Context) (Exit, error)
	// Stop sends the stop signal, waits up to the kill timeout, then kills.
	// It returns once the replica is gone; stopping a gone replica is not
	// an error.
	Stop(ctx context.Context) error
	// Enforced reports whether CPU and memory limits are in force.
	Enforced() bool
	// CPUTime is the CPU time the replica has used so far; ok is false
	// when the driver cannot tell (the replica is gone, say).
	CPUTime() (used time.Duration, ok bool)
}

// Driver runs replicas of one kind.
type Driver interface {
	// Name is "exec" or "docker".
	Name() string
	// Available returns nil when the driver can run replicas on this node,
	// else why not ("docker: no engine at unix:///var/run/docker.sock: ...").
	Available(ctx context.Context) error
	// Start starts a task. Errors that the operator must fix (command not
	// found, image missing) wrap ErrTask.
	Start(ctx context.Context, t Task) (Handle, error)
	// Recover re-attaches to a replica from its State blob. It returns
	// ErrGone when the replica no longer runs.
	Recover(ctx context.Context, t Task, state []byte) (Handle, error)
	// Logs opens the replica's output for reading (docker: from the
	// engine; exec: the log files are read directly and this may return
	// ErrNoLogs).
	Logs(ctx context.Context, t Task, state []byte, follow bool) (io.ReadCloser, error)
}

var (
	// ErrTask marks errors in the task itself: retrying the same start
	// gives the same error.
	ErrTask = errors.New("task error")
	// ErrGone means the replica to recover is no longer running.
	ErrGone = errors.New("replica is gone")
	// ErrNoLogs means the driver leaves logs to the log files.
	ErrNoLogs = errors.New("logs are in files")
)
