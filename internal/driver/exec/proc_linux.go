package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// procPollInterval is how often a process is looked for in /proc where
// pidfd cannot tell when it ends.
const procPollInterval = 100 * time.Millisecond

// procStat is what the driver reads from /proc/<pid>/stat.
type procStat struct {
	state     byte   // field 3: R, S, D, Z, X, ...
	pgrp      int    // field 5: process group
	startTime uint64 // field 22: start time in clock ticks since boot
}

// dead reports whether the process has ended and only its exit status is
// left to be reaped.
func (s procStat) dead() bool { return s.state == 'Z' || s.state == 'X' }

// readStat reads the stat line of process pid.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses a /proc/<pid>/stat line. The command name (field 2) is
// in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("proc stat %q: no command name", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("proc stat %q: too few fields", b)
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: process group: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: start time: %w", err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTime: start}, nil
}

// running reports whether pid is the process that started at start and
// has not ended.
func running(pid int, start uint64) bool {
	s, err := readStat(pid)
	return err == nil && s.startTime == start && !s.dead()
}

// groupMembers returns the live processes of process group pgid, whose
// leader started at leaderStart. If a process other than that leader now
// holds the number pgid, the group is gone (the number is only reused once
// no member is left) and the result is empty.
func groupMembers(pgid int, leaderStart uint64) []int {
	d, err := os.Open(procRoot)
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
		s, err := readStat(pid)
		if err != nil || s.pgrp != pgid {
			continue
		}
		if pid == pgid && s.startTime != leaderStart {
			return nil
		}
		if !s.dead() {
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
