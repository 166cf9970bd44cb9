package scheduler

import (
	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

// Defaults for a replica whose run section leaves them out (or sets 0):
// the run section's own (package spec), so that what the scheduler
// reserves is what the node runs.
const (
	// DefaultCPU is the CPU a replica reserves, in millicores.
	DefaultCPU = spec.DefaultCPU
	// DefaultMemoryMB is the memory a replica reserves, in MiB.
	DefaultMemoryMB = spec.DefaultMemoryMB
	// DefaultPortName is the one port a replica gets when its run section
	// lists none.
	DefaultPortName = spec.DefaultPortName
)

// HoldsResources reports whether a replica occupies resources on its node
// and so must be accounted when a Cluster is built: every placed replica
// that should run, and every placed replica told to stop that has not
// stopped yet (its State is not stopped, failed or lost). A replica that
// waits for a place (no Node) holds nothing.
func HoldsResources(r *api.Replica) bool {
	if r == nil || r.Node == "" {
		return false
	}
	switch r.Desired {
	case api.DesiredRun:
		return true
	case api.DesiredStop:
		switch r.State {
		case api.ReplicaStopped, api.ReplicaFailed, api.ReplicaLost:
			return false
		}
		return true
	}
	// An unknown desired state: count it, so that odd input never leads
	// to overcommitting a node.
	return true
}

// ReplicaResources returns what each replica of run reserves: its
// Resources with DefaultCPU and DefaultMemoryMB in place of missing or
// non-positive values. A nil run gets the defaults.
func ReplicaResources(run *api.Run) api.Resources {
	res := api.Resources{CPU: DefaultCPU, MemoryMB: DefaultMemoryMB}
	if run != nil && run.Resources != nil {
		if run.Resources.CPU > 0 {
			res.CPU = run.Resources.CPU
		}
		if run.Resources.MemoryMB > 0 {
			res.MemoryMB = run.Resources.MemoryMB
		}
	}
	return res
}

// PortNames returns the names of the host ports each replica of run gets,
// in the order of run.Ports, without repeats; DefaultPortName alone when
// run lists none.
func PortNames(run *api.Run) []string {
	if run == nil || len(run.Ports) == 0 {
		return []string{DefaultPortName}
	}
	names := make([]string, 0, len(run.Ports))
outer:
	for _, p := range run.Ports {
		for _, n := range names {
			if n == p.Name {
				continue outer
			}
		}
		names = append(names, p.Name)
	}
	return names
}

// replicaDemand is what an accounted replica reserves: its recorded
// Resources, with the defaults in place of non-positive values so that a
// malformed record never makes a node look emptier than it is.
func replicaDemand(r *api.Replica) (cpu, mem int64) {
	cpu, mem = amount(r.Resources.CPU), amount(r.Resources.MemoryMB)
	if cpu <= 0 {
		cpu = DefaultCPU
	}
	if mem <= 0 {
		mem = DefaultMemoryMB
	}
	return cpu, mem
}

// maxAmount bounds every CPU and memory figure the scheduler adds up, so
// that no sum of them overflows: 2^40 millicores or MiB is far beyond any
// machine.
const maxAmount = 1 << 40

// amount returns v as an int64 no greater than maxAmount.
func amount(v int) int64 {
	return min(int64(v), maxAmount)
}
