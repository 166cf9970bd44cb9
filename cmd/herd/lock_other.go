//go:build !unix

package main

import (
	"io"
	"os"
	"os/exec"
)

func setOwnProcessGroup(c *exec.Cmd) {}

func signalChild(c *exec.Cmd, sig os.Signal) {
	if sig == os.Interrupt || sig == os.Kill {
		_ = c.Process.Signal(sig)
		return
	}
	// Only os.Kill can be sent on this platform.
	_ = c.Process.Kill()
}

func childStdin(in io.Reader) io.Reader { return in }

func exitCode(ps *os.ProcessState) int {
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	return 1
}
