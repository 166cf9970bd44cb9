//go:build unix

package main

import (
	"io"
	"os"
	"os/exec"
	"syscall"
)

// setOwnProcessGroup makes the child lead a new process group, so that
// signals reach every process it starts.
func setOwnProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalChild sends sig to the child's process group, and SIGCONT after it
// so that a stopped process acts on it.
func signalChild(c *exec.Cmd, sig os.Signal) {
	s, ok := sig.(syscall.Signal)
	if !ok {
		_ = c.Process.Signal(sig)
		return
	}
	if err := syscall.Kill(-c.Process.Pid, s); err != nil {
		_ = c.Process.Signal(sig)
	}
	if s != syscall.SIGKILL && s != syscall.SIGCONT {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGCONT)
	}
}

// childStdin is in, except a terminal: a process outside the terminal's
// foreground process group that reads it would be stopped.
func childStdin(in io.Reader) io.Reader {
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil
		}
	}
	return in
}

// exitCode is the child's exit status, or 128+N if it died of signal N.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
