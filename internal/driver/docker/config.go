package docker

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/herd-cluster/herd/internal/driver"
)

// Log rotation of the json-file log driver: the engine keeps at most
// 30 MB of a replica's output.
const (
	logMaxSize  = "10m"
	logMaxFiles = "3"
)

// signalNames are the stop signals a run spec may name, by number; the
// engine takes a name ("SIGTERM") or a number.
var signalNames = map[syscall.Signal]string{
	syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGKILL: "SIGKILL",
}

// signalName returns the engine's name for sig; "" (the image's default,
// else SIGTERM) for 0.
func signalName(sig syscall.Signal) string {
	if sig == 0 {
		return ""
	}
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return strconv.Itoa(int(sig))
}

// stopSeconds is the kill timeout in whole seconds, rounded up (the API
// counts seconds); 0 kills right after the stop signal.
func stopSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// containerConfig translates a task into the engine's container and host
// configuration, publishing the ports on bindIP (all addresses when
// invalid). Bad ports are an error wrapping driver.ErrTask.
func containerConfig(t driver.Task, bindIP netip.Addr) (*container.Config, *container.HostConfig, error) {
	stop := stopSeconds(t.KillTimeout)
	cfg := &container.Config{
		Image:      t.Image,
		User:       t.User,
		WorkingDir: t.WorkDir,
		Labels:     map[string]string{LabelReplica: t.ID, LabelService: t.Service},
		// Set here too: engines older than API 1.42 ignore the signal
		// parameter of a stop request and use the container's.
		StopSignal:  signalName(t.StopSignal),
		StopTimeout: &stop,
	}
	if t.Command != "" {
		cfg.Entrypoint = []string{t.Command}
		cfg.Cmd = t.Args
	} else if len(t.Args) > 0 {
		cfg.Cmd = t.Args
	}
	for _, k := range slices.Sorted(maps.Keys(t.Env)) {
		cfg.Env = append(cfg.Env, k+"="+t.Env[k])
	}

	hcfg := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles},
		},
		Resources: container.Resources{
			NanoCPUs: int64(t.CPU) * 1e6, // millicores → 10⁻⁹ CPUs
			Memory:   int64(t.MemoryMB) << 20,
		},
	}
	if len(t.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		hcfg.PortBindings = network.PortMap{}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Ports)) {
		host := t.Ports[name]
		inner, ok := t.ContainerPorts[name]
		if !ok || inner == 0 {
			inner = host
		}
		if !validPort(host) || !validPort(inner) {
			return nil, nil, fmt.Errorf("port %q: %d→%d is not a pair of ports (1-65535): %w", name, host, inner, driver.ErrTask)
		}
		p, _ := network.PortFrom(uint16(inner), network.TCP) // valid: checked above
		cfg.ExposedPorts[p] = struct{}{}
		hcfg.PortBindings[p] = append(hcfg.PortBindings[p], network.PortBinding{
			HostIP:   bindIP,
			HostPort: strconv.Itoa(host),
		})
	}
	return cfg, hcfg, nil
}

func validPort(p int) bool { return p > 0 && p <= 65535 }
