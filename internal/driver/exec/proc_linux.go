package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/procfs"
)

// procPollInterval is how often a process is looked for in /proc where
// pidfd cannot tell when it ends.
const procPollInterval = 100 * time.Millisecond

// running reports whether pid is the process that started at start and
// has not ended.
func running(pid int, start uint64) bool {
	s, err := procfs.ReadStat(pid)
	return err == nil && s.StartTime == start && !s.Dead()
}

// groupMembers returns the live processes of process group pgid, whose
// leader started at leaderStart. If a process other than that leader now
// holds the number pgid, the group is gone (the number is only reused once
// no member is left) and the result is empty.
func groupMembers(pgid int, leaderStart uint64) []int {
	d, err := os.Open(procfs.Root)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil
	}
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		s, err := procfs.ReadStat(pid)
		if err != nil || s.Pgrp != pgid {
			continue
		}
		if pid == pgid && s.StartTime != leaderStart {
			return nil
		}
		if !s.Dead() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitEnd blocks until the process pid that started at start has ended
// (it may still await reaping) or ctx ends. It watches a pidfd where the
// kernel has them (Linux 5.3) and polls /proc otherwise, or when usePidfd
// is false.
func waitEnd(ctx context.Context, pid int, start uint64, usePidfd bool) error {
	if usePidfd {
		fd, err := unix.PidfdOpen(pid, 0)
		switch {
		case errors.Is(err, unix.ESRCH):
			return nil
		case err == nil:
			// The pidfd names one process for good; if it is not the
			// one that started at start, the pid was reused and ours
			// has ended.
			if !running(pid, start) {
				unix.Close(fd)
				return nil
			}
			err = waitReadable(ctx, fd) // closes fd
			if err == nil || ctx.Err() != nil {
				return err
			}
		}
		// No pidfd (ENOSYS, EPERM under seccomp, ...) or no poller for it:
		// fall back to /proc.
	}
	t := time.NewTicker(procPollInterval)
	defer t.Stop()
	for running(pid, start) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// errNotPollable means a pidfd could not be added to the runtime's poller.
var errNotPollable = errors.New("pidfd is not pollable")

// waitReadable waits through the runtime's poller, without holding a
// thread, until pidfd fd is readable (its process has ended) or ctx ends.
// It takes ownership of fd.
func waitReadable(ctx context.Context, fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("pidfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	// A file the poller does not take has no deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		return errNotPollable
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pidfd: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		if err != nil && err != unix.EINTR {
			perr = err
			return true
		}
		return n > 0
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("pidfd: %w", err)
	case perr != nil:
		return fmt.Errorf("pidfd: poll: %w", perr)
	}
	return nil
}
