//go:build linux

package exec

import (
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cgroupV2 reports whether the machine's cgroup root is a v2 hierarchy
// with the cpu and memory controllers.
func cgroupV2() bool {
	b, err := os.ReadFile(filepath.Join(DefaultCgroupRoot, "cgroup.controllers"))
	f := strings.Fields(string(b))
	return err == nil && contains(f, "cpu") && contains(f, "memory")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestNotEnforcedWithoutCgroupV2(t *testing.T) {
	if cgroupV2() {
		t.Skip("this machine has cgroup v2")
	}
	d := newDriver()
	tk := shTask(t, "exit 0")
	tk.CPU, tk.MemoryMB = 500, 64
	h := start(t, d, tk)
	if h.Enforced() {
		t.Error("Enforced without cgroup v2")
	}
	if h.st.Cgroup != "" {
		t.Errorf("cgroup %q without cgroup v2", h.st.Cgroup)
	}
	if d.cgroupLimits() == nil {
		t.Error("cgroupLimits reports support")
	}
	if exit := wait(t, h); exit.Code != 0 {
		t.Errorf("exit %+v", exit)
	}
}

// fakeCgroupRoot is a plain directory laid out like a cgroup v2 root.
func fakeCgroupRoot(t *testing.T, controllers string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string]string{"cgroup.controllers": controllers, "cgroup.subtree_control": ""} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestProbeCgroup(t *testing.T) {
	root := fakeCgroupRoot(t, "cpuset cpu io memory pids\n")
	// The parent exists with its controllers file, as the kernel makes it.
	if err := os.Mkdir(filepath.Join(root, cgroupParent), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, cgroupParent, "cgroup.subtree_control"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := probeCgroup(root); err != nil {
		t.Fatalf("probe: %v", err)
	}
	for _, dir := range []string{root, filepath.Join(root, cgroupParent)} {
		if got := readTrim(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+cpu +memory" {
			t.Errorf("%s subtree_control = %q", dir, got)
		}
	}

	if err := probeCgroup(fakeCgroupRoot(t, "cpu io pids")); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("probe without memory = %v, want an error naming it", err)
	}
	if err := probeCgroup(t.TempDir()); err == nil {
		t.Error("probe of a directory without cgroup.controllers succeeded")
	}
}

func TestCreateCgroup(t *testing.T) {
	tests := []struct {
		name      string
		cpu, mem  int
		cpuMax    string
		memoryMax string
	}{
		{name: "one and a half CPUs", cpu: 1500, mem: 64, cpuMax: "150000 100000", memoryMax: "67108864"},
		{name: "below the minimum quota", cpu: 5, mem: 1, cpuMax: "1000 100000", memoryMax: "1048576"},
		{name: "no limits", cpu: 0, mem: 0}, // the kernel's default, "max"
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, cgroupParent), 0o755); err != nil {
				t.Fatal(err)
			}
			dir, err := createCgroup(root, "r1", tc.cpu, tc.mem)
			if err != nil {
				t.Fatal(err)
			}
			if dir != filepath.Join(root, cgroupParent, "r1") {
				t.Errorf("dir = %s", dir)
			}
			for file, want := range map[string]string{"cpu.max": tc.cpuMax, "memory.max": tc.memoryMax} {
				b, err := os.ReadFile(filepath.Join(dir, file))
				if got := strings.TrimSpace(string(b)); got != want || (want == "") != os.IsNotExist(err) {
					t.Errorf("%s = %q (%v), want %q", file, got, err, want)
				}
			}
		})
	}
	for _, id := range []string{"", ".", "..", "a/b"} {
		if _, err := createCgroup(t.TempDir(), id, 100, 64); err == nil {
			t.Errorf("createCgroup(%q) succeeded", id)
		}
	}
}

func TestEnforcedWithCgroupV2(t *testing.T) {
	if !cgroupV2() || os.Geteuid() != 0 {
		t.Skip("needs root and cgroup v2 with the cpu and memory controllers")
	}
	d := newDriver()
	if err := d.cgroupLimits(); err != nil {
		t.Skipf("cgroup v2 present but not usable: %v", err)
	}
	tk := shTask(t, "cat /proc/self/cgroup; sleep 100")
	tk.CPU, tk.MemoryMB = 500, 64
	h := start(t, d, tk)
	if !h.Enforced() {
		t.Fatal("not enforced")
	}
	if got := readTrim(t, filepath.Join(h.st.Cgroup, "cpu.max")); got != "50000 100000" {
		t.Errorf("cpu.max = %q", got)
	}
	if got := readTrim(t, filepath.Join(h.st.Cgroup, "memory.max")); got != "67108864" {
		t.Errorf("memory.max = %q", got)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(h.st.PID), "cgroup"))
	if err != nil || !strings.Contains(string(b), "/"+cgroupParent+"/"+tk.ID) {
		t.Errorf("process cgroup = %q, %v", b, err)
	}
	stop(t, h)
	if _, err := os.Stat(h.st.Cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after Stop: %v", h.st.Cgroup, err)
	}
}

// cgroup2Mount returns a mount point of a cgroup v2 hierarchy, with or
// without controllers, or "".
func cgroup2Mount() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "cgroup2" && len(f) > 4 {
				return f[4]
			}
		}
	}
	return ""
}

// TestStartInCgroup starts a process straight into a cgroup of the
// machine's v2 hierarchy (even one without controllers, such as the
// unified mount of a v1 host), then kills and removes it as Stop does.
func TestStartInCgroup(t *testing.T) {
	mount := cgroup2Mount()
	if mount == "" || os.Geteuid() != 0 {
		t.Skip("needs root and a cgroup v2 mount")
	}
	dir := filepath.Join(mount, "herd-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup v2 at %s not writable: %v", mount, err)
	}
	t.Cleanup(func() { _ = removeCgroup(dir, cgroupRemoveWait) })

	cmd := &osexec.Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 100 & sleep 100"},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	cmd, err := startIn(cmd, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "cgroup"))
	if err != nil || !strings.Contains(string(b), "0::/"+filepath.Base(dir)+"\n") {
		t.Errorf("process cgroups = %q, %v", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(cgroupProcs(dir)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(cgroupProcs(dir)); n != 3 {
		t.Errorf("%d processes in the cgroup, want 3", n)
	}
	if err := removeCgroup(dir, 0); err == nil {
		t.Error("removed a cgroup with processes in it")
	}
	killCgroup(dir)
	_ = cmd.Wait()
	if err := removeCgroup(dir, cgroupRemoveWait); err != nil {
		t.Errorf("remove after kill: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup still there: %v", err)
	}
}

// TestStopWithCgroup runs the whole driver with its cgroups on the
// machine's v2 mount (the probe is skipped, as a v1 host's unified mount
// has no controllers, and the task sets no limits): a process that left
// the process group is still stopped through the cgroup, which is removed.
func TestStopWithCgroup(t *testing.T) {
	mount := cgroup2Mount()
	if mount == "" || os.Geteuid() != 0 {
		t.Skip("needs root and a cgroup v2 mount")
	}
	parent := filepath.Join(mount, cgroupParent)
	if err := os.Mkdir(parent, 0o755); err == nil {
		t.Cleanup(func() { _ = os.Remove(parent) })
	} else if !os.IsExist(err) {
		t.Skipf("cgroup v2 at %s not writable: %v", mount, err)
	}
	d := New(Config{CgroupRoot: mount, Logger: newDriver().log})
	d.cgOnce.Do(func() {}) // limits "can be enforced"

	tk := shTask(t, `setsid sleep 100 & echo $! > escaped; sleep 100`)
	tk.KillTimeout = 300 * time.Millisecond
	h := start(t, d, tk)
	if !h.Enforced() || h.st.Cgroup != filepath.Join(parent, tk.ID) {
		t.Fatalf("enforced %v, cgroup %q", h.Enforced(), h.st.Cgroup)
	}
	escaped, _ := strconv.Atoi(waitFile(t, filepath.Join(tk.WorkDir, "escaped")))
	if r, err := d.Recover(context.Background(), tk, h.State()); err != nil || !r.Enforced() {
		t.Errorf("Recover: %v, enforced %v", err, err == nil && r.Enforced())
	}

	stop(t, h)
	if alive(escaped) {
		t.Errorf("process %d that left the group survived Stop", escaped)
	}
	if _, err := os.Stat(h.st.Cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup left after Stop: %v", err)
	}
}
