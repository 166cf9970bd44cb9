package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/herd-cluster/herd/internal/driver"

	"github.com/herd-cluster/herd/internal/procfs"
)

// defaultPath is the replica's PATH when the agent has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Available returns nil: a Linux node can always run processes.
func (d *Driver) Available(ctx context.Context) error { return nil }

// Start starts t's command in its own process group, in its own cgroup
// where limits can be enforced, and returns its handle. Errors in the task
// itself (command not found or not executable, unknown user, a work
// directory that cannot be made) wrap driver.ErrTask.
func (d *Driver) Start(ctx context.Context, t driver.Task) (driver.Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case t.ID == "":
		return nil, fmt.Errorf("exec: task has no ID: %w", driver.ErrTask)
	case t.LogDir == "" || t.WorkDir == "":
		return nil, fmt.Errorf("exec: task %s: log dir %q and work dir %q must both be set: %w", t.ID, t.LogDir, t.WorkDir, driver.ErrTask)
	case !filepath.IsAbs(t.WorkDir):
		return nil, fmt.Errorf("exec: task %s: work dir %q is not absolute: %w", t.ID, t.WorkDir, driver.ErrTask)
	}
	env := environ(t)
	path, err := lookCommand(t.Command, envValue(env, "PATH"), t.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("exec: task %s: %w", t.ID, err)
	}
	cred, err := credential(t.User)
	if err != nil {
		return nil, fmt.Errorf("exec: task %s: %w", t.ID, err)
	}
	if err := makeWorkDir(t.WorkDir, cred); err != nil {
		return nil, fmt.Errorf("exec: task %s: %w", t.ID, err)
	}
	stdout, stderr, err := openLogs(t.LogDir)
	if err != nil {
		return nil, fmt.Errorf("exec: task %s: %w", t.ID, err)
	}
	defer stdout.Close() // the child holds its own copies
	defer stderr.Close()

	cmd := &osexec.Cmd{
		Path:   path,
		Args:   append([]string{t.Command}, t.Args...),
		Env:    env,
		Dir:    t.WorkDir,
		Stdin:  nil, // /dev/null
		Stdout: stdout,
		Stderr: stderr,
		// Its own process group: Stop signals the whole group, and the
		// agent's terminal or group signals do not reach it. No
		// Pdeathsig: the replica outlives the agent.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: cred},
	}
	cgroup := d.startCgroup(t)
	cmd, err = startIn(cmd, cgroup)
	if err != nil {
		if cgroup != "" {
			_ = removeCgroup(cgroup, 0)
		}
		as := ""
		if t.User != "" {
			as = fmt.Sprintf(" as user %q", t.User)
		}
		return nil, fmt.Errorf("exec: task %s: start %s in %s%s: %w", t.ID, path, t.WorkDir, as, classify(err))
	}
	pid := cmd.Process.Pid
	stat, err := procfs.ReadStat(pid)
	if err != nil {
		// Without the start time the process could not be recovered
		// safely; do not leave it running unknown.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if cgroup != "" {
			_ = removeCgroup(cgroup, cgroupRemoveWait)
		}
		return nil, fmt.Errorf("exec: task %s: read start time of pid %d: %w", t.ID, pid, err)
	}
	st := state{PID: pid, StartTime: stat.StartTime, PGID: pid, Cgroup: cgroup}
	d.log.Debug("replica started", "task", t.ID, "pid", pid, "command", path, "cgroup", cgroup)
	return d.newHandle(t, st, cmd), nil
}

// startCgroup creates t's cgroup when limits can be enforced, and returns
// its directory, or "" to run without limits.
func (d *Driver) startCgroup(t driver.Task) string {
	if d.cgroupLimits() != nil {
		return ""
	}
	dir, err := createCgroup(d.cgroupRoot, t.ID, t.CPU, t.MemoryMB)
	if err != nil {
		d.log.Warn("exec driver: replica runs without CPU and memory limits", "task", t.ID, "err", err)
		return ""
	}
	return dir
}

// startIn starts cmd inside cgroup dir ("" for none) and returns the
// started command. Kernels before 5.7 cannot start a process in a cgroup;
// there a copy of cmd is started and moved in right after.
func startIn(cmd *osexec.Cmd, dir string) (*osexec.Cmd, error) {
	if dir == "" {
		return cmd, cmd.Start()
	}
	cg, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	defer cg.Close()
	plain := *cmd.SysProcAttr
	again := &osexec.Cmd{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir,
		Stdout: cmd.Stdout, Stderr: cmd.Stderr, SysProcAttr: &plain}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(cg.Fd())
	err = cmd.Start()
	if !errors.Is(err, syscall.ENOSYS) {
		return cmd, err
	}
	// A Cmd cannot be started twice, even after a failed start.
	if err := again.Start(); err != nil {
		return nil, err
	}
	// Not in the cgroup for a moment; the children it starts will be,
	// unless it forked already.
	_ = writeCgroupFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(again.Process.Pid))
	return again, nil
}

// classify marks the errors of starting a process that come from the task
// (the program cannot be run as given) with driver.ErrTask; resource
// shortages stay unmarked, as a retry may succeed.
func classify(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.EACCES, syscall.ENOENT, syscall.ENOEXEC, syscall.ENOTDIR, syscall.EPERM,
		syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EISDIR, syscall.E2BIG, syscall.ELIBBAD:
		return fmt.Errorf("%w: %w", err, driver.ErrTask)
	}
	return err
}

// environ is the replica's environment: PATH from the agent and HOME set
// to the work directory, then the task's variables, which may override
// both; sorted by name.
func environ(t driver.Task) []string {
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.WorkDir}
	if env["PATH"] == "" {
		env["PATH"] = defaultPath
	}
	maps.Copy(env, t.Env)
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// envValue returns the value of name in env, a list of "name=value".
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// lookCommand resolves command to the file to execute: a path with a slash
// as is (relative to dir if not absolute), a bare name in the absolute
// directories of pathList. Not finding an executable file wraps
// driver.ErrTask.
func lookCommand(command, pathList, dir string) (string, error) {
	if command == "" {
		return "", fmt.Errorf("no command: %w", driver.ErrTask)
	}
	if strings.Contains(command, "/") {
		p := command
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("command %q: %w: %w", command, err, driver.ErrTask)
		}
		return p, nil
	}
	for _, d := range filepath.SplitList(pathList) {
		// Relative entries would depend on the agent's directory.
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, command)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q: %w", command, pathList, driver.ErrTask)
}

// executable returns nil if path is a regular file with an execute bit.
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	switch {
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// credential returns the credential to run as user name (a name or a
// numeric ID): nil for "" or for the agent's own user. Another user needs
// the agent to be root. An unknown user wraps driver.ErrTask.
func credential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w: %w", name, err, driver.ErrTask)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w: %w", name, u.Uid, err, driver.ErrTask)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w: %w", name, u.Gid, err, driver.ErrTask)
	}
	if uid == uint64(os.Geteuid()) {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("user %q: running as another user needs an agent running as root: %w", name, driver.ErrTask)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && g != gid {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

// makeWorkDir creates dir if it is missing, owned by the replica's user.
func makeWorkDir(dir string, cred *syscall.Credential) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("work dir: %w: %w", err, driver.ErrTask)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
	}
	return nil
}

// openLogs creates dir and opens its stdout and stderr files for
// appending.
func openLogs(dir string) (stdout, stderr *os.File, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("log dir: %w", err)
	}
	open := func(name string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		return f, nil
	}
	if stdout, err = open(StdoutFile); err != nil {
		return nil, nil, err
	}
	if stderr, err = open(StderrFile); err != nil {
		stdout.Close()
		return nil, nil, err
	}
	return stdout, stderr, nil
}

// state is the blob Recover reads: enough to find the process again and to
// tell it from a later process that got the same pid.
type state struct {
	PID int `json:"pid"`
	// StartTime is field 22 of /proc/<pid>/stat, in clock ticks since
	// boot.
	StartTime uint64 `json:"start_time"`
	PGID      int    `json:"pgid"`
	// Cgroup is the replica's cgroup directory, "" when it has none.
	Cgroup string `json:"cgroup,omitempty"`
}

// Recover re-attaches to the replica described by blob. It returns an
// error wrapping driver.ErrGone when that process no longer runs (or the
// pid now belongs to another process); it then also kills what is left in
// the replica's process group and cgroup, as nothing would stop it
// otherwise. The handle's Wait cannot read the exit status of a process
// the agent did not start: it reports Code -1 and an Err.
func (d *Driver) Recover(ctx context.Context, t driver.Task, blob []byte) (driver.Handle, error) {
	var st state
	if err := json.Unmarshal(blob, &st); err != nil {
		return nil, fmt.Errorf("exec: recover %s: bad state %q: %w: %w", t.ID, blob, err, driver.ErrGone)
	}
	if st.PID <= 0 || st.PGID <= 0 {
		return nil, fmt.Errorf("exec: recover %s: bad state %q: %w", t.ID, blob, driver.ErrGone)
	}
	h := d.newHandle(t, st, nil)
	if !running(st.PID, st.StartTime) {
		h.killLeftovers()
		return nil, fmt.Errorf("exec: recover %s: pid %d: %w", t.ID, st.PID, driver.ErrGone)
	}
	d.log.Debug("replica recovered", "task", t.ID, "pid", st.PID)
	return h, nil
}

// cgroupExists reports whether cgroup dir exists.
func cgroupExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
