package spec

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/api"
)

// The defaults of a run section, as documented on api.Run's fields.
const (
	DefaultReplicas        = 1
	DefaultPortName        = "http"
	DefaultStopSignal      = "SIGTERM"
	DefaultKillTimeout     = 10 * time.Second
	DefaultCPU             = 100
	DefaultMemoryMB        = 64
	DefaultPlacement       = "spread"
	DefaultRestartDelay    = time.Second
	DefaultRestartMaxDelay = time.Minute
	DefaultResetAfter      = time.Minute
	DefaultCrashLoopAfter  = 5
	DefaultMaxParallel     = 1
	DefaultMinHealthyTime  = 2 * time.Second
	DefaultHealthyDeadline = time.Minute
	DefaultAutoscaleWindow = time.Minute
)

// Placement strategies.
const (
	PlacementSpread  = "spread"
	PlacementBinpack = "binpack"
)

// Limits of a run section.
const (
	MaxReplicas    = 10000
	maxPorts       = 16
	maxPortNameLen = 32
	maxCPU         = 1_000_000 // millicores: a thousand cores
	maxMemoryMB    = 16 << 20  // 16 TiB
	maxKillTimeout = 10 * time.Minute
	maxEnv         = 256
)

var (
	portNameRe = regexp.MustCompile(`^[a-z0-9_]+$`)
	envNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// signals are the stop signals a run section may name.
var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGKILL": syscall.SIGKILL,
}

// Signal returns the signal a stop_signal names ("SIGTERM" or "TERM", any
// case); ok is false for an unknown name.
func Signal(name string) (s syscall.Signal, ok bool) {
	s, ok = signals[signalName(name)]
	return s, ok
}

// signalName is the canonical form of a stop_signal: upper case, with
// the SIG prefix.
func signalName(name string) string {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return name
}

func (v *validator) run(r *api.Run, s *api.Service) {
	if r == nil {
		return
	}
	if len(s.Backends) > 0 {
		v.add("backends", "a service with a run section gets its backends from its replicas; remove backends or run")
	}
	switch r.Driver {
	case api.DriverExec:
		if r.Command == "" {
			v.add("run.command", "required by driver exec")
		}
		if r.Image != "" {
			v.add("run.image", "only for driver docker")
		}
	case api.DriverDocker:
		if r.Image == "" {
			v.add("run.image", "required by driver docker")
		}
	case "":
		v.add("run.driver", "required (exec or docker)")
	default:
		v.add("run.driver", "%q is not one of exec, docker", r.Driver)
	}
	if r.Command != "" && strings.ContainsAny(r.Command, "\x00\n") {
		v.add("run.command", "must not contain NUL or newline")
	}
	if len(r.Env) > maxEnv {
		v.add("run.env", "%d variables; at most %d", len(r.Env), maxEnv)
	}
	for _, k := range sortedKeys(r.Env) {
		switch {
		case !envNameRe.MatchString(k):
			v.add("run.env."+k, "not a valid variable name (letters, digits, '_', not starting with a digit)")
		case k == "PORT" || strings.HasPrefix(k, "HERD_"):
			v.add("run.env."+k, "is set by herd")
		case strings.ContainsRune(r.Env[k], 0):
			v.add("run.env."+k, "must not contain NUL")
		}
	}
	if r.WorkDir != "" && !filepath.IsAbs(r.WorkDir) {
		v.add("run.work_dir", "%q must be an absolute path", r.WorkDir)
	}
	if len(r.Ports) > maxPorts {
		v.add("run.ports", "%d ports; at most %d", len(r.Ports), maxPorts)
	}
	seen := map[string]int{}
	for i, p := range r.Ports {
		field := fmt.Sprintf("run.ports[%d]", i)
		switch {
		case p.Name == "":
			v.add(field+".name", "required")
		case len(p.Name) > maxPortNameLen || !portNameRe.MatchString(p.Name):
			v.add(field+".name", "%q must be 1-%d lower-case letters, digits and '_'", p.Name, maxPortNameLen)
		default:
			if j, dup := seen[p.Name]; dup {
				v.add(field+".name", "%q is also ports[%d]", p.Name, j)
			}
			seen[p.Name] = i
		}
		switch {
		case p.ContainerPort < 0 || p.ContainerPort > 65535:
			v.add(field+".container_port", "%d is not a port (1-65535)", p.ContainerPort)
		case p.ContainerPort != 0 && r.Driver != api.DriverDocker:
			v.add(field+".container_port", "only for driver docker")
		}
	}
	if r.StopSignal != "" {
		if _, ok := Signal(r.StopSignal); !ok {
			v.add("run.stop_signal", "%q is not one of SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGKILL", r.StopSignal)
		}
	}
	switch {
	case r.KillTimeout < 0:
		v.add("run.kill_timeout", "must not be negative")
	case r.KillTimeout.D() > maxKillTimeout:
		v.add("run.kill_timeout", "%s is more than %s", r.KillTimeout.D(), maxKillTimeout)
	}
	if r.Replicas != nil && (*r.Replicas < 0 || *r.Replicas > MaxReplicas) {
		v.add("run.replicas", "%d is not in 0..%d", *r.Replicas, MaxReplicas)
	}
	if res := r.Resources; res != nil {
		if res.CPU < 0 || res.CPU > maxCPU {
			v.add("run.resources.cpu", "%d millicores is not in 0..%d", res.CPU, maxCPU)
		}
		if res.MemoryMB < 0 || res.MemoryMB > maxMemoryMB {
			v.add("run.resources.memory_mb", "%d MiB is not in 0..%d", res.MemoryMB, maxMemoryMB)
		}
	}
	for i, c := range r.Constraints {
		v.constraint(fmt.Sprintf("run.constraints[%d]", i), c)
	}
	if r.Spread != "" && r.Spread != "zone" {
		v.add("run.spread", "%q is not supported (only zone)", r.Spread)
	}
	switch r.Placement {
	case "", PlacementSpread, PlacementBinpack:
	default:
		v.add("run.placement", "%q is not one of spread, binpack", r.Placement)
	}
	if p := r.Restart; p != nil {
		switch p.Policy {
		case "", api.RestartAlways, api.RestartOnFailure, api.RestartNever:
		default:
			v.add("run.restart.policy", "%q is not one of always, on-failure, never", p.Policy)
		}
		for _, d := range []struct {
			f string
			d api.Duration
		}{{"delay", p.Delay}, {"max_delay", p.MaxDelay}, {"reset_after", p.ResetAfter}} {
			if d.d < 0 {
				v.add("run.restart."+d.f, "must not be negative")
			}
		}
		if p.Delay > 0 && p.MaxDelay > 0 && p.MaxDelay < p.Delay {
			v.add("run.restart.max_delay", "%s is less than delay %s", p.MaxDelay.D(), p.Delay.D())
		}
		if p.CrashLoopAfter < 0 {
			v.add("run.restart.crash_loop_after", "must not be negative")
		}
	}
	if u := r.Update; u != nil {
		if u.MaxParallel < 0 {
			v.add("run.update.max_parallel", "must not be negative")
		}
		if u.MinHealthyTime < 0 {
			v.add("run.update.min_healthy_time", "must not be negative")
		}
		if u.HealthyDeadline < 0 {
			v.add("run.update.healthy_deadline", "must not be negative")
		}
		if u.HealthyDeadline > 0 && u.MinHealthyTime >= u.HealthyDeadline {
			v.add("run.update.healthy_deadline", "%s must be longer than min_healthy_time %s", u.HealthyDeadline.D(), u.MinHealthyTime.D())
		}
	}
	if a := r.Autoscale; a != nil {
		switch {
		case a.Min < 0:
			v.add("run.autoscale.min", "must not be negative")
		case a.Max < 1 || a.Max > MaxReplicas:
			v.add("run.autoscale.max", "%d is not in 1..%d", a.Max, MaxReplicas)
		case a.Max < a.Min:
			v.add("run.autoscale.max", "%d is less than min %d", a.Max, a.Min)
		case r.Replicas != nil && (*r.Replicas < a.Min || *r.Replicas > a.Max):
			v.add("run.replicas", "%d is outside autoscale min..max (%d..%d)", *r.Replicas, a.Min, a.Max)
		}
		switch {
		case a.TargetRPSPerReplica < 0:
			v.add("run.autoscale.target_rps_per_replica", "must not be negative")
		case a.TargetCPU < 0 || a.TargetCPU > 1000:
			v.add("run.autoscale.target_cpu", "%d is not a percentage in 1..1000", a.TargetCPU)
		case (a.TargetRPSPerReplica > 0) == (a.TargetCPU > 0):
			v.add("run.autoscale", "set exactly one of target_rps_per_replica, target_cpu")
		}
		if a.Window < 0 {
			v.add("run.autoscale.window", "must not be negative")
		}
	}
}

func (v *validator) constraint(field string, c api.Constraint) {
	attr := c.Attribute
	switch {
	case attr == "":
		v.add(field+".attribute", "required (zone, node, driver, or a node label as labels.NAME)")
	case strings.HasPrefix(attr, "labels.") && len(attr) == len("labels."):
		v.add(field+".attribute", "labels. needs a label name")
	}
	switch c.Op {
	case api.ConstraintEquals:
		if len(c.Values) != 1 {
			v.add(field+".values", "equals takes exactly one value, not %d", len(c.Values))
		}
	case api.ConstraintIn, api.ConstraintNot:
		if len(c.Values) == 0 {
			v.add(field+".values", "at least one value is required")
		}
	case "":
		v.add(field+".op", "required (equals, in or not)")
	default:
		v.add(field+".op", "%q is not one of equals, in, not", c.Op)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// RunDefaults returns a copy of r with every default filled in: replicas 1,
// one port named http, stop_signal SIGTERM, kill_timeout 10s, resources
// 100 millicores and 64 MiB, placement spread, restart always with delay 1s
// doubling up to 1m, reset after 1m, crash loop after 5, update one at a
// time with min_healthy_time 2s and healthy_deadline 1m, autoscale window
// 1m. The copy shares no slices, maps or pointers with r. Nil gives nil.
func RunDefaults(r *api.Run) *api.Run {
	if r == nil {
		return nil
	}
	c := *r
	c.Args = slices.Clone(r.Args)
	c.Env = make(map[string]string, len(r.Env))
	for k, v := range r.Env {
		c.Env[k] = v
	}
	c.Ports = slices.Clone(r.Ports)
	if len(c.Ports) == 0 {
		c.Ports = []api.Port{{Name: DefaultPortName}}
	}
	c.Constraints = make([]api.Constraint, len(r.Constraints))
	for i, k := range r.Constraints {
		k.Values = slices.Clone(k.Values)
		c.Constraints[i] = k
	}
	n := DefaultReplicas
	if r.Replicas != nil {
		n = *r.Replicas
	}
	c.Replicas = &n
	if c.StopSignal == "" {
		c.StopSignal = DefaultStopSignal
	} else if _, ok := Signal(c.StopSignal); ok {
		c.StopSignal = signalName(c.StopSignal)
	}
	setDuration(&c.KillTimeout, DefaultKillTimeout)
	res := deref(r.Resources)
	setInt(&res.CPU, DefaultCPU)
	setInt(&res.MemoryMB, DefaultMemoryMB)
	c.Resources = &res
	if c.Placement == "" {
		c.Placement = DefaultPlacement
	}
	rp := deref(r.Restart)
	if rp.Policy == "" {
		rp.Policy = api.RestartAlways
	}
	setDuration(&rp.Delay, DefaultRestartDelay)
	setDuration(&rp.MaxDelay, max(DefaultRestartMaxDelay, rp.Delay.D()))
	setDuration(&rp.ResetAfter, DefaultResetAfter)
	setInt(&rp.CrashLoopAfter, DefaultCrashLoopAfter)
	c.Restart = &rp
	u := deref(r.Update)
	setInt(&u.MaxParallel, DefaultMaxParallel)
	setDuration(&u.MinHealthyTime, DefaultMinHealthyTime)
	setDuration(&u.HealthyDeadline, max(DefaultHealthyDeadline, 2*u.MinHealthyTime.D()))
	c.Update = &u
	if r.Autoscale != nil {
		a := *r.Autoscale
		setDuration(&a.Window, DefaultAutoscaleWindow)
		c.Autoscale = &a
	}
	return &c
}

// RunVersionKey is the part of a run section whose change makes a new
// version of the service's replicas (a rollout): everything but replicas,
// autoscale and the update policy, after defaults. Two sections with the
// same key run the same replicas.
func RunVersionKey(r *api.Run) string {
	if r == nil {
		return ""
	}
	d := RunDefaults(r)
	d.Replicas, d.Autoscale, d.Update = nil, nil, nil
	b, err := json.Marshal(d)
	if err != nil {
		// Plain data always marshals; keep a distinct key regardless.
		return fmt.Sprintf("%#v", d)
	}
	return string(b)
}
