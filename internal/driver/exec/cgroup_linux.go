package exec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupParent is the directory under the cgroup root that holds one
// cgroup per replica.
const cgroupParent = "herd"

// cpuPeriod is the cpu.max period in microseconds; the quota is the task's
// millicores times 100, so 1000 millicores is one full CPU.
const cpuPeriod = 100000

// minCPUQuota is the smallest quota the kernel accepts, in microseconds.
const minCPUQuota = 1000

// cgroupLimits reports whether resource limits can be enforced, probing
// the hierarchy on the first call; it returns why not otherwise.
func (d *Driver) cgroupLimits() error {
	d.cgOnce.Do(func() {
		d.cgErr = probeCgroup(d.cgroupRoot)
		if d.cgErr != nil {
			d.log.Info("exec driver: CPU and memory limits are not enforced", "reason", d.cgErr)
		} else {
			d.log.Info("exec driver: CPU and memory limits are enforced with cgroup v2", "root", d.cgroupRoot)
		}
	})
	return d.cgErr
}

// probeCgroup checks that root is a cgroup v2 hierarchy with the cpu and
// memory controllers and prepares root/herd so that the cgroups created in
// it get both controllers.
func probeCgroup(root string) error {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("no cgroup v2 hierarchy at %s: %w", root, err)
	}
	have := strings.Fields(string(b))
	for _, c := range []string{"cpu", "memory"} {
		if !slices.Contains(have, c) {
			return fmt.Errorf("cgroup v2 at %s lacks the %s controller (has %q)", root, c, have)
		}
	}
	parent := filepath.Join(root, cgroupParent)
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup v2 at %s is not writable: %w", root, err)
	}
	// Both levels must pass the controllers down: the root to herd, herd
	// to the replicas. A root that holds processes (a container's cgroup
	// namespace) refuses with EBUSY.
	for _, dir := range []string{root, parent} {
		if err := enableControllers(dir); err != nil {
			return err
		}
	}
	return nil
}

// enableControllers adds cpu and memory to dir's cgroup.subtree_control
// unless they are there.
func enableControllers(dir string) error {
	file := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	on := strings.Fields(string(b))
	if slices.Contains(on, "cpu") && slices.Contains(on, "memory") {
		return nil
	}
	if err := writeCgroupFile(file, "+cpu +memory"); err != nil {
		return fmt.Errorf("cgroup: enable cpu and memory in %s: %w", dir, err)
	}
	return nil
}

// createCgroup creates the cgroup of replica id under root and sets its
// limits: cpu in millicores, mem in MiB, zero meaning no limit. It returns
// the cgroup's directory.
func createCgroup(root, id string, cpu, mem int) (string, error) {
	if id == "" || id == "." || id == ".." || strings.ContainsRune(id, '/') {
		return "", fmt.Errorf("cgroup: task ID %q is not a file name", id)
	}
	dir := filepath.Join(root, cgroupParent, id)
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		// Left by a replica of the same ID that was not cleaned up; it
		// can only be removed if nothing runs in it.
		if rerr := os.Remove(dir); rerr != nil {
			return "", fmt.Errorf("cgroup: %s exists and cannot be removed: %w", dir, rerr)
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	// A new cgroup has no limits ("max"); zero leaves it so.
	var limits []struct{ file, value string }
	if cpu > 0 {
		quota := strconv.Itoa(max(cpu*100, minCPUQuota)) + " " + strconv.Itoa(cpuPeriod)
		limits = append(limits, struct{ file, value string }{"cpu.max", quota})
	}
	if mem > 0 {
		limits = append(limits, struct{ file, value string }{"memory.max", strconv.FormatInt(int64(mem)<<20, 10)})
	}
	for _, w := range limits {
		if err := writeCgroupFile(filepath.Join(dir, w.file), w.value); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("cgroup: set %s of %s to %q: %w", w.file, dir, w.value, err)
		}
	}
	return dir, nil
}

// writeCgroupFile writes value to a cgroup interface file. (O_CREATE is a
// no-op on cgroupfs, whose files exist, and lets tests use a plain
// directory.)
func writeCgroupFile(file, value string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cgroupProcs returns the processes in cgroup dir; a cgroup that no
// longer exists has none.
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, l := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(l)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killCgroup kills every process in cgroup dir: with cgroup.kill where the
// kernel has it (5.14), else one by one.
func killCgroup(dir string) {
	if writeCgroupFile(filepath.Join(dir, "cgroup.kill"), "1") == nil {
		return
	}
	for _, pid := range cgroupProcs(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removeCgroup removes cgroup dir, retrying for up to wait while the
// kernel finishes releasing its last processes. A missing dir is removed.
func removeCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("cgroup: remove %s: %w", dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
