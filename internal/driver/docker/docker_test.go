package docker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/herd-cluster/herd/internal/driver"
)

func TestAvailableBogusHost(t *testing.T) {
	t.Parallel()
	for _, host := range []string{
		"unix:///nonexistent/docker.sock",
		"tcp://192.0.2.1:2375", // TEST-NET-1: never answers
	} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			d, err := New(host)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer d.Close()
			begin := time.Now()
			err = d.Available(t.Context())
			took := time.Since(begin)
			if err == nil {
				t.Fatal("Available: nil, want an error")
			}
			contains(t, "error", err.Error(), "docker: no engine at "+host+": ")
			if took > pingTimeout+500*time.Millisecond {
				t.Errorf("Available took %v, want at most %v", took, pingTimeout)
			}
		})
	}
}

func TestStartServes(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	task.Args = []string{"one", "two words"}
	task.Env["GREETING"] = "hello world"
	task.Env["HERD_PORT_ADMIN"] = "0"
	task.User = "1234:1234"
	admin := freePort(t)
	task.Ports["admin"] = admin // no container port: the same number inside

	h := start(t, d, task)
	id := stateID(t, h)
	if !h.Enforced() {
		t.Error("Enforced() = false, want true")
	}

	if got := mustGet(t, task, "/"); !strings.HasPrefix(id, got) || len(got) < 12 {
		t.Errorf("GET / = %q, want the container's short ID (%s)", got, id[:12])
	}
	for name, want := range map[string]string{"GREETING": "hello world", "PORT": "8080", "HERD_REPLICA_ID": task.ID} {
		if got := mustGet(t, task, "/env?name="+name); got != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}
	if got := mustGet(t, task, "/args"); got != "one\ntwo words" {
		t.Errorf("args = %q, want one, two words", got)
	}
	if got := mustGet(t, task, "/uid"); got != "1234" {
		t.Errorf("uid = %q, want 1234", got)
	}

	info, err := d.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	c := info.Container
	if c.Name != "/"+containerName(task.ID) {
		t.Errorf("name = %q, want /%s", c.Name, containerName(task.ID))
	}
	if c.Config.Labels[LabelReplica] != task.ID || c.Config.Labels[LabelService] != "echo" {
		t.Errorf("labels = %v", c.Config.Labels)
	}
	hc := c.HostConfig
	if hc.NanoCPUs != 250e6 || hc.Memory != 32<<20 {
		t.Errorf("NanoCPUs, Memory = %d, %d; want 250e6, 32 MiB", hc.NanoCPUs, hc.Memory)
	}
	if hc.RestartPolicy.Name != "no" {
		t.Errorf("restart policy = %q, want no", hc.RestartPolicy.Name)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" || hc.LogConfig.Config["max-file"] != "3" {
		t.Errorf("log config = %+v", hc.LogConfig)
	}
	want := network.PortMap{
		network.MustParsePort("8080/tcp"):                   {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(task.Ports["http"])}},
		network.MustParsePort(strconv.Itoa(admin) + "/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(admin)}},
	}
	if len(hc.PortBindings) != len(want) {
		t.Errorf("port bindings = %v, want %v", hc.PortBindings, want)
	}
	for p, b := range want {
		if !slices.Equal(hc.PortBindings[p], b) {
			t.Errorf("port bindings[%s] = %v, want %v", p, hc.PortBindings[p], b)
		}
	}

	// Wait returns when ctx ends while the container runs.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if e, err := h.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait(short ctx) = %+v, %v; want DeadlineExceeded", e, err)
	}

	begin := time.Now()
	if err := h.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(begin).Round(time.Millisecond))
	if exists(t, d, id) {
		t.Error("container still exists after Stop")
	}
	// The echo server exits 0 on SIGTERM; Wait still knows after removal.
	if e, err := h.Wait(t.Context()); err != nil || e != (driver.Exit{Code: 0}) {
		t.Errorf("Wait after Stop = %+v, %v; want code 0", e, err)
	}
	if err := h.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestWaitExitCode(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	h := start(t, d, task)

	type result struct {
		e   driver.Exit
		err error
	}
	waited := make(chan result, 1)
	go func() {
		e, err := h.Wait(t.Context())
		waited <- result{e, err}
	}()
	mustGet(t, task, "/exit")
	select {
	case r := <-waited:
		if r.err != nil || r.e != (driver.Exit{Code: 3}) {
			t.Errorf("Wait = %+v, %v; want code 3", r.e, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return 10s after /exit")
	}
	// Again, from the engine this time on a fresh handle, and after Stop.
	h2, err := d.Recover(t.Context(), task, nil)
	if !errors.Is(err, driver.ErrGone) || h2 != nil {
		t.Errorf("Recover of an exited container = %v, %v; want ErrGone", h2, err)
	}
	if e, err := h.Wait(t.Context()); err != nil || e.Code != 3 {
		t.Errorf("second Wait = %+v, %v; want code 3", e, err)
	}
	if err := h.Stop(t.Context()); err != nil {
		t.Errorf("Stop of an exited, removed container: %v", err)
	}
}

func TestStopSignal(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	tests := []struct {
		name     string
		signal   syscall.Signal
		timeout  time.Duration
		want     driver.Exit
		minDelay time.Duration
	}{
		// The echo server exits 4 on SIGUSR1.
		{name: "stop signal", signal: syscall.SIGUSR1, timeout: 5 * time.Second, want: driver.Exit{Code: 4}},
		// It ignores SIGHUP, so the engine kills it after the timeout.
		{name: "kill after timeout", signal: syscall.SIGHUP, timeout: time.Second,
			want: driver.Exit{Code: -1, Signal: syscall.SIGKILL}, minDelay: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			task := newTask(t, d)
			task.StopSignal = tc.signal
			task.KillTimeout = tc.timeout
			h := start(t, d, task)
			begin := time.Now()
			if err := h.Stop(t.Context()); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			took := time.Since(begin)
			if took < tc.minDelay || took > tc.timeout+5*time.Second {
				t.Errorf("Stop took %v, want %v to %v", took, tc.minDelay, tc.timeout+5*time.Second)
			}
			if e, err := h.Wait(t.Context()); err != nil || e != tc.want {
				t.Errorf("Wait = %+v, %v; want %+v", e, err, tc.want)
			}
			if exists(t, d, containerName(task.ID)) {
				t.Error("container still exists after Stop")
			}
		})
	}
}

func TestStartMissingImage(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := driver.Task{ID: "missing-image", Service: "x", Image: "herd-test/does-not-exist:v0"}
	h, err := d.Start(t.Context(), task)
	if !errors.Is(err, driver.ErrTask) || h != nil {
		t.Fatalf("Start = %v, %v; want ErrTask", h, err)
	}
	contains(t, "error", err.Error(), `image "herd-test/does-not-exist:v0" not found on this node`)
}

func TestStartBadCommand(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	task.Command = "/no/such/binary"
	h, err := d.Start(t.Context(), task)
	if err == nil {
		_ = h.Stop(t.Context())
		t.Fatal("Start of a missing command succeeded")
	}
	t.Logf("Start: %v", err)
	if !errors.Is(err, driver.ErrTask) {
		t.Errorf("Start = %v; want ErrTask", err)
	}
	if exists(t, d, containerName(task.ID)) {
		t.Error("failed container left behind")
	}
}

func TestStartReplacesLeftover(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	old := start(t, d, task)
	h := start(t, d, task) // same name and host port: the old one must go first
	if exists(t, d, stateID(t, old)) {
		t.Error("left-over container still exists")
	}
	if e, err := old.Wait(t.Context()); err != nil || !errors.Is(e.Err, driver.ErrGone) {
		t.Errorf("Wait on the replaced handle = %+v, %v; want Exit.Err ErrGone", e, err)
	}
	if err := h.Stop(t.Context()); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	h := start(t, d, task)

	// An agent restart: a new driver recovers from the blob alone.
	d2 := newDriver(t)
	rh, err := d2.Recover(t.Context(), task, h.State())
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if string(rh.State()) != string(h.State()) {
		t.Errorf("recovered State = %s, want %s", rh.State(), h.State())
	}
	mustGet(t, task, "/health")
	other := task
	other.ID = "someone-else"
	if _, err := d2.Recover(t.Context(), other, h.State()); !errors.Is(err, driver.ErrGone) {
		t.Errorf("Recover with another replica's task = %v; want ErrGone", err)
	}
	if err := rh.Stop(t.Context()); err != nil {
		t.Fatalf("Stop of the recovered handle: %v", err)
	}
	if e, err := rh.Wait(t.Context()); err != nil || e.Code != 0 {
		t.Errorf("Wait = %+v, %v; want code 0", e, err)
	}
	if _, err := d2.Recover(t.Context(), task, h.State()); !errors.Is(err, driver.ErrGone) {
		t.Errorf("Recover of a removed container = %v; want ErrGone", err)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	task := newTask(t, d)
	task.Args = []string{"--flag"}
	h := start(t, d, task)

	rc, err := d.Logs(t.Context(), task, h.State(), false)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	if err != nil {
		t.Fatalf("read logs: %v", err)
	}
	// One line from stdout, one from stderr, without stream headers.
	contains(t, "logs", string(b), "echo: listening on :8080\n", "echo: args [--flag]\n")
	if strings.ContainsRune(string(b), 0) {
		t.Errorf("logs %q contain stream headers", b)
	}

	// Following: closing the reader while the container runs (no more
	// output to come) ends the stream.
	rc, err = d.Logs(t.Context(), task, nil, true) // no blob: found by name
	if err != nil {
		t.Fatalf("Logs(follow): %v", err)
	}
	lines := bufio.NewScanner(rc)
	for lines.Scan() && !strings.Contains(lines.Text(), "listening") {
	}
	closed := make(chan error, 1)
	go func() { closed <- rc.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a following log reader did not return")
	}

	// ctx ending ends a follow stream too.
	ctx, cancel := context.WithCancel(t.Context())
	rc, err = d.Logs(ctx, task, h.State(), true)
	if err != nil {
		t.Fatalf("Logs(follow): %v", err)
	}
	cancel()
	if _, err := io.ReadAll(rc); err == nil {
		// The stream may also end cleanly if cancel raced the request.
		t.Log("follow stream ended without error after cancel")
	}
	_ = rc.Close()

	if err := h.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	known, stray := newTask(t, d), newTask(t, d)
	kh := start(t, d, known)
	sh := start(t, d, stray)
	// Stop the stray's process without removing it: exited containers
	// are strays too.
	mustGet(t, stray, "/exit")
	if _, err := sh.Wait(t.Context()); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	// Other herd containers may share the engine (parallel tests): keep
	// everything but this test's stray.
	removed, err := d.Cleanup(t.Context(), func(id string) bool { return id != stray.ID })
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if !slices.Equal(removed, []string{stray.ID}) {
		t.Errorf("Cleanup removed %v, want [%s]", removed, stray.ID)
	}
	if exists(t, d, stateID(t, sh)) {
		t.Error("stray container still exists")
	}
	if !exists(t, d, stateID(t, kh)) {
		t.Error("known container was removed")
	}
	if err := kh.Stop(t.Context()); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
