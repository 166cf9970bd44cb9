//go:build linux

package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/driver"

	"github.com/herd-cluster/herd/internal/procfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newDriver() *Driver {
	return New(Config{Logger: slog.New(slog.DiscardHandler)})
}

// shTask is a task that runs script with /bin/sh in fresh directories.
func shTask(t *testing.T, script string) driver.Task {
	t.Helper()
	dir := t.TempDir()
	return driver.Task{
		ID:          strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()),
		Service:     "test",
		Command:     "/bin/sh",
		Args:        []string{"-c", script},
		WorkDir:     filepath.Join(dir, "work"),
		LogDir:      filepath.Join(dir, "logs"),
		KillTimeout: 5 * time.Second,
	}
}

// start starts tk and stops it when the test ends.
func start(t *testing.T, d *Driver, tk driver.Task) *handle {
	t.Helper()
	h, err := d.Start(context.Background(), tk)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	hh := h.(*handle)
	t.Cleanup(func() { stop(t, hh) })
	return hh
}

func stop(t *testing.T, h driver.Handle) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func wait(t *testing.T, h driver.Handle) driver.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exit, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return exit
}

// waitFile waits until path exists and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within 5s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitChild reads the pid of a background "sleep" the script wrote to
// path and waits until that process runs sleep: between its fork and its
// exec it is still a copy of the shell, with the shell's traps, and a
// signal sent then is lost with the exec (the shell runs the trap, the
// sleep that follows never sees the signal).
func waitChild(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(waitFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not exec sleep within 5s (comm %q, %v)", pid, comm, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alive(pid int) bool {
	s, err := procfs.ReadStat(pid)
	return err == nil && !s.Dead()
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    []string
		want    driver.Exit
	}{
		{name: "success", command: "true", want: driver.Exit{Code: 0}},
		{name: "false from PATH", command: "false", want: driver.Exit{Code: 1}},
		{name: "script exit 3", command: "/bin/sh", args: []string{"-c", "exit 3"}, want: driver.Exit{Code: 3}},
		{name: "killed by a signal", command: "/bin/sh", args: []string{"-c", "kill -KILL $$"}, want: driver.Exit{Code: -1, Signal: syscall.SIGKILL}},
	}
	d := newDriver()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := shTask(t, "")
			tk.Command, tk.Args = tc.command, tc.args
			h := start(t, d, tk)
			if got := wait(t, h); got != tc.want {
				t.Errorf("exit = %+v, want %+v", got, tc.want)
			}
			// Cached: the same again.
			if got := wait(t, h); got != tc.want {
				t.Errorf("second Wait = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLogsGoToFiles(t *testing.T) {
	d := newDriver()
	tk := shTask(t, "echo out; echo err >&2")
	for range 2 { // a second start appends
		wait(t, start(t, d, tk))
	}
	for name, want := range map[string]string{StdoutFile: "out\nout\n", StderrFile: "err\nerr\n"} {
		b, err := os.ReadFile(filepath.Join(tk.LogDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
}

func TestEnvironmentAndWorkDir(t *testing.T) {
	t.Setenv("HERD_TEST_AGENT_ONLY", "secret")
	d := newDriver()
	tk := shTask(t, `env; echo "pwd=$(pwd)"; read line; echo "stdin=$line"`)
	tk.Env = map[string]string{"PORT": "8080", "HERD_PORT_HTTP": "8080", "HERD_REPLICA_ID": "r1"}
	h := start(t, d, tk)
	if exit := wait(t, h); exit.Code != 0 {
		t.Fatalf("exit %+v", exit)
	}
	b, err := os.ReadFile(filepath.Join(tk.LogDir, StdoutFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	has := func(l string) bool {
		for _, x := range lines {
			if x == l {
				return true
			}
		}
		return false
	}
	for _, want := range []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + tk.WorkDir, "PORT=8080", "HERD_PORT_HTTP=8080",
		"HERD_REPLICA_ID=r1", "pwd=" + tk.WorkDir, "stdin=",
	} {
		if !has(want) {
			t.Errorf("output lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "HERD_TEST_AGENT_ONLY") {
		t.Errorf("the agent's environment leaked into the replica:\n%s", b)
	}
	if fi, err := os.Stat(tk.WorkDir); err != nil || !fi.IsDir() {
		t.Errorf("work dir not created: %v", err)
	}
}

func TestStartErrorsAreTaskErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	noInterp := filepath.Join(dir, "script")
	if err := os.WriteFile(noInterp, []byte("#!/no/such/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command string
		user    string
		want    string // in the error
	}{
		{name: "not in PATH", command: "herd-no-such-command", want: `"herd-no-such-command" not found in PATH`},
		{name: "absolute path missing", command: "/no/such/herd-cmd", want: "/no/such/herd-cmd"},
		{name: "not executable", command: plain, want: "not executable"},
		{name: "a directory", command: dir, want: "not a regular file"},
		{name: "interpreter missing", command: noInterp, want: noInterp},
		{name: "unknown user", command: "true", user: "herd-no-such-user", want: `user "herd-no-such-user"`},
	}
	d := newDriver()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk := shTask(t, "")
			tk.Command, tk.Args, tk.User = tc.command, nil, tc.user
			h, err := d.Start(context.Background(), tk)
			if err == nil {
				stop(t, h)
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, driver.ErrTask) {
				t.Errorf("error %q does not wrap ErrTask", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	tk := shTask(t, "id -u; touch file-in-work-dir")
	tk.User = "nobody"
	// t.TempDir's directories are private; the user must reach its work
	// directory, which Start creates and hands to it.
	for dir := filepath.Dir(tk.WorkDir); dir != os.TempDir(); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := start(t, newDriver(), tk)
	if exit := wait(t, h); exit.Code != 0 {
		t.Fatalf("exit %+v", exit)
	}
	b, _ := os.ReadFile(filepath.Join(tk.LogDir, StdoutFile))
	if strings.TrimSpace(string(b)) != u.Uid {
		t.Errorf("id -u printed %q, want %s", b, u.Uid)
	}
}

func TestStopHonoursStopSignal(t *testing.T) {
	tk := shTask(t, `trap 'echo bye; exit 7' TERM; sleep 100 & echo $! > child; wait`)
	h := start(t, newDriver(), tk)
	child := waitChild(t, filepath.Join(tk.WorkDir, "child"))

	began := time.Now()
	stop(t, h)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Stop took %v though the replica exits on SIGTERM", took)
	}
	if exit := wait(t, h); exit != (driver.Exit{Code: 7}) {
		t.Errorf("exit = %+v, want code 7 from the TERM trap", exit)
	}
	if b, _ := os.ReadFile(filepath.Join(tk.LogDir, StdoutFile)); string(b) != "bye\n" {
		t.Errorf("stdout = %q", b)
	}
	if alive(child) {
		t.Errorf("child %d in the process group still runs", child)
	}
	stop(t, h) // idempotent
}

func TestStopKillsAfterTimeout(t *testing.T) {
	tk := shTask(t, `trap '' TERM; sleep 100 & echo $! > child; wait`)
	tk.KillTimeout = 300 * time.Millisecond
	h := start(t, newDriver(), tk)
	child := waitChild(t, filepath.Join(tk.WorkDir, "child"))

	began := time.Now()
	stop(t, h)
	took := time.Since(began)
	if took < tk.KillTimeout || took > 5*time.Second {
		t.Errorf("Stop took %v, want a little more than the kill timeout %v", took, tk.KillTimeout)
	}
	if exit := wait(t, h); exit != (driver.Exit{Code: -1, Signal: syscall.SIGKILL}) {
		t.Errorf("exit = %+v, want SIGKILL", exit)
	}
	if alive(child) {
		t.Errorf("child %d ignoring SIGTERM still runs", child)
	}
}

func TestStopSignalOption(t *testing.T) {
	tk := shTask(t, `trap 'exit 9' USR1; trap '' TERM; echo ready > ready; while :; do sleep 0.05; done`)
	tk.StopSignal = syscall.SIGUSR1
	h := start(t, newDriver(), tk)
	waitFile(t, filepath.Join(tk.WorkDir, "ready"))
	stop(t, h)
	if exit := wait(t, h); exit.Code != 9 {
		t.Errorf("exit = %+v, want 9 from the USR1 trap", exit)
	}
}

func TestStopAfterExitKillsLeftovers(t *testing.T) {
	// The leader exits and leaves a child in its process group.
	tk := shTask(t, `sleep 100 & echo $! > child; exit 0`)
	h := start(t, newDriver(), tk)
	if exit := wait(t, h); exit.Code != 0 {
		t.Fatalf("exit %+v", exit)
	}
	child := waitChild(t, filepath.Join(tk.WorkDir, "child"))
	if !alive(child) {
		t.Fatalf("child %d not running before Stop", child)
	}
	stop(t, h)
	if alive(child) {
		t.Errorf("child %d still runs after Stop", child)
	}
}

func TestWaitAndStopConcurrently(t *testing.T) {
	tk := shTask(t, "")
	tk.Command, tk.Args = "sleep", []string{"100"}
	h := start(t, newDriver(), tk)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running process = %v, want the deadline", err)
	}

	exits := make([]driver.Exit, 4)
	var wg sync.WaitGroup
	for i := range exits {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			exits[i], _ = h.Wait(ctx)
		})
	}
	for range 3 {
		wg.Go(func() { stop(t, h) })
	}
	wg.Wait()
	for i, e := range exits {
		if e != (driver.Exit{Code: -1, Signal: syscall.SIGTERM}) {
			t.Errorf("waiter %d: %+v, want SIGTERM", i, e)
		}
	}
}

func TestStopRespectsContext(t *testing.T) {
	tk := shTask(t, `trap '' TERM; echo ready > ready; sleep 100`)
	tk.KillTimeout = time.Minute
	h := start(t, newDriver(), tk)
	waitFile(t, filepath.Join(tk.WorkDir, "ready"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want the context's deadline", err)
	}
	if !alive(h.st.PID) {
		t.Error("Stop killed the process before the kill timeout")
	}
	h.killTimeout = 10 * time.Millisecond // let the cleanup's Stop kill it
}

func TestRecoverRunning(t *testing.T) {
	for _, pidfd := range []bool{true, false} {
		t.Run("pidfd="+strconv.FormatBool(pidfd), func(t *testing.T) {
			d := newDriver()
			tk := shTask(t, "")
			tk.Command, tk.Args = "sleep", []string{"100"}
			orig := start(t, d, tk)

			// The agent restarts: only the state blob is left.
			r, err := d.Recover(context.Background(), tk, orig.State())
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			h := r.(*handle)
			h.usePidfd = pidfd
			if h.Enforced() {
				t.Error("recovered handle without a cgroup reports limits enforced")
			}
			if string(h.State()) != string(orig.State()) {
				t.Errorf("state %s, want %s", h.State(), orig.State())
			}

			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			if _, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait on a running process = %v, want the deadline", err)
			}
			if err := syscall.Kill(orig.st.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			exit := wait(t, h)
			if exit.Code != -1 || exit.Err == nil {
				t.Errorf("recovered exit = %+v, want code -1 and an error", exit)
			}
			// The real parent still reaps it.
			if exit := wait(t, orig); exit.Signal != syscall.SIGKILL {
				t.Errorf("original handle: %+v", exit)
			}
		})
	}
}

func TestRecoverAndStop(t *testing.T) {
	d := newDriver()
	tk := shTask(t, `sleep 100 & echo $! > child; wait`)
	orig := start(t, d, tk)
	child := waitChild(t, filepath.Join(tk.WorkDir, "child"))
	h, err := d.Recover(context.Background(), tk, orig.State())
	if err != nil {
		t.Fatal(err)
	}
	stop(t, h)
	if alive(orig.st.PID) || alive(child) {
		t.Error("the recovered replica's processes still run after Stop")
	}
	if exit := wait(t, orig); exit.Signal != syscall.SIGTERM {
		t.Errorf("exit = %+v, want SIGTERM", exit)
	}
}

func TestRecoverGone(t *testing.T) {
	d := newDriver()

	t.Run("exited", func(t *testing.T) {
		tk := shTask(t, "exit 0")
		h := start(t, d, tk)
		wait(t, h)
		if _, err := d.Recover(context.Background(), tk, h.State()); !errors.Is(err, driver.ErrGone) {
			t.Errorf("Recover of an exited process = %v, want ErrGone", err)
		}
	})

	t.Run("pid reused", func(t *testing.T) {
		tk := shTask(t, "")
		tk.Command, tk.Args = "sleep", []string{"100"}
		h := start(t, d, tk)
		st := h.st
		st.StartTime++ // as if the pid now belonged to a later process
		blob := mustJSON(t, st)
		if _, err := d.Recover(context.Background(), tk, blob); !errors.Is(err, driver.ErrGone) {
			t.Errorf("Recover with another start time = %v, want ErrGone", err)
		}
		if !alive(h.st.PID) {
			t.Error("Recover killed a process that is not the replica's")
		}
	})

	t.Run("bad state", func(t *testing.T) {
		for _, blob := range []string{"", "{", `{"pid":0}`, `{"pid":-1,"pgid":-1}`} {
			if _, err := d.Recover(context.Background(), shTask(t, ""), []byte(blob)); !errors.Is(err, driver.ErrGone) {
				t.Errorf("Recover(%q) = %v, want ErrGone", blob, err)
			}
		}
	})
}

func TestNameAvailableLogs(t *testing.T) {
	d := newDriver()
	if d.Name() != "exec" {
		t.Errorf("Name = %q", d.Name())
	}
	if err := d.Available(context.Background()); err != nil {
		t.Errorf("Available = %v", err)
	}
	if _, err := d.Logs(context.Background(), driver.Task{}, nil, false); !errors.Is(err, driver.ErrNoLogs) {
		t.Errorf("Logs = %v, want ErrNoLogs", err)
	}
}

func TestPidfdIsWatchedByThePoller(t *testing.T) {
	tk := shTask(t, "")
	tk.Command, tk.Args = "sleep", []string{"100"}
	h := start(t, newDriver(), tk)
	watch := func(ctx context.Context) error {
		fd, err := unix.PidfdOpen(h.st.PID, 0)
		if err != nil {
			t.Skipf("no pidfd: %v", err)
		}
		return waitReadable(ctx, fd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := watch(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitReadable on a running process = %v, want the deadline (not a fallback)", err)
	}
	if err := syscall.Kill(h.st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := watch(ctx); err != nil {
		t.Errorf("waitReadable after the process ended = %v", err)
	}
}

func TestCPUTime(t *testing.T) {
	h := start(t, newDriver(), shTask(t, `while :; do :; done`))
	first, ok := h.CPUTime()
	if !ok {
		t.Fatal("no CPU time for a running replica")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		used, ok := h.CPUTime()
		if ok && used > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a busy loop's CPU time did not grow in 5 s: %v -> %v", first, used)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop(t, h)
	if used, ok := h.CPUTime(); ok {
		t.Fatalf("a stopped replica reports %v of CPU", used)
	}
}
