package docker

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/herd-cluster/herd/internal/driver"
)

func TestContainerConfig(t *testing.T) {
	base := driver.Task{
		ID: "r1", Service: "web", Image: "web:1",
		Env:         map[string]string{"PORT": "8080", "A": "1"},
		StopSignal:  syscall.SIGQUIT,
		KillTimeout: 1500 * time.Millisecond,
		CPU:         1500, MemoryMB: 128,
	}
	tests := []struct {
		name           string
		command        string
		args           []string
		wantEntrypoint []string
		wantCmd        []string
	}{
		{name: "image default", wantEntrypoint: nil, wantCmd: nil},
		{name: "args only", args: []string{"-v"}, wantEntrypoint: nil, wantCmd: []string{"-v"}},
		{name: "command", command: "/bin/web", args: []string{"-v"}, wantEntrypoint: []string{"/bin/web"}, wantCmd: []string{"-v"}},
		{name: "command without args", command: "/bin/web", wantEntrypoint: []string{"/bin/web"}, wantCmd: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := base
			task.Command, task.Args = tc.command, tc.args
			cfg, hcfg, err := containerConfig(task, netip.Addr{})
			if err != nil {
				t.Fatalf("containerConfig: %v", err)
			}
			if !slices.Equal(cfg.Entrypoint, tc.wantEntrypoint) || !slices.Equal(cfg.Cmd, tc.wantCmd) {
				t.Errorf("Entrypoint, Cmd = %q, %q; want %q, %q", cfg.Entrypoint, cfg.Cmd, tc.wantEntrypoint, tc.wantCmd)
			}
			if !slices.Equal(cfg.Env, []string{"A=1", "PORT=8080"}) {
				t.Errorf("Env = %q", cfg.Env)
			}
			if cfg.StopSignal != "SIGQUIT" || cfg.StopTimeout == nil || *cfg.StopTimeout != 2 {
				t.Errorf("StopSignal, StopTimeout = %q, %v; want SIGQUIT, 2", cfg.StopSignal, cfg.StopTimeout)
			}
			if hcfg.NanoCPUs != 1_500_000_000 || hcfg.Memory != 128<<20 {
				t.Errorf("NanoCPUs, Memory = %d, %d", hcfg.NanoCPUs, hcfg.Memory)
			}
			if cfg.ExposedPorts != nil || hcfg.PortBindings != nil {
				t.Errorf("ports without Task.Ports: %v, %v", cfg.ExposedPorts, hcfg.PortBindings)
			}
		})
	}
}

func TestContainerConfigPorts(t *testing.T) {
	task := driver.Task{
		ID: "r1", Image: "web:1",
		Ports:          map[string]int{"http": 20001, "admin": 20002},
		ContainerPorts: map[string]int{"http": 80, "unused": 9},
	}
	for _, bind := range []netip.Addr{{}, netip.MustParseAddr("10.0.0.7")} {
		cfg, hcfg, err := containerConfig(task, bind)
		if err != nil {
			t.Fatalf("containerConfig: %v", err)
		}
		want := network.PortMap{
			network.MustParsePort("80/tcp"):    {{HostIP: bind, HostPort: "20001"}},
			network.MustParsePort("20002/tcp"): {{HostIP: bind, HostPort: "20002"}},
		}
		if len(hcfg.PortBindings) != len(want) || len(cfg.ExposedPorts) != len(want) {
			t.Fatalf("bind %v: bindings %v, exposed %v; want %v", bind, hcfg.PortBindings, cfg.ExposedPorts, want)
		}
		for p, b := range want {
			if !slices.Equal(hcfg.PortBindings[p], b) {
				t.Errorf("bind %v: bindings[%s] = %v, want %v", bind, p, hcfg.PortBindings[p], b)
			}
			if _, ok := cfg.ExposedPorts[p]; !ok {
				t.Errorf("bind %v: %s not exposed", bind, p)
			}
		}
	}

	for _, bad := range []driver.Task{
		{Ports: map[string]int{"http": 0}},
		{Ports: map[string]int{"http": 70000}},
		{Ports: map[string]int{"http": 8080}, ContainerPorts: map[string]int{"http": -1}},
	} {
		if _, _, err := containerConfig(bad, netip.Addr{}); !errors.Is(err, driver.ErrTask) {
			t.Errorf("containerConfig(%v, %v) = %v; want ErrTask", bad.Ports, bad.ContainerPorts, err)
		}
	}
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{
		0: "", syscall.SIGTERM: "SIGTERM", syscall.SIGUSR2: "SIGUSR2", syscall.SIGKILL: "SIGKILL", syscall.Signal(40): "40",
	} {
		if got := signalName(sig); got != want {
			t.Errorf("signalName(%d) = %q, want %q", sig, got, want)
		}
	}
}

func TestStopSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		-time.Second: 0, 0: 0, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 10 * time.Second: 10,
	} {
		if got := stopSeconds(d); got != want {
			t.Errorf("stopSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestExitOf(t *testing.T) {
	for code, want := range map[int]driver.Exit{
		0:   {Code: 0},
		3:   {Code: 3},
		128: {Code: 128},
		137: {Code: -1, Signal: syscall.SIGKILL},
		143: {Code: -1, Signal: syscall.SIGTERM},
		255: {Code: 255},
	} {
		if got := exitOf(code); got != want {
			t.Errorf("exitOf(%d) = %+v, want %+v", code, got, want)
		}
	}
}

func TestBindIP(t *testing.T) {
	d, err := New("unix:///nonexistent.sock", BindIP("::1"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer d.Close()
	if d.bindIP != netip.IPv6Loopback() {
		t.Errorf("bindIP = %v, want ::1", d.bindIP)
	}
	if _, err := New("", BindIP("not-an-ip")); err == nil {
		t.Error("New with a bad BindIP: nil error")
	}
}
