package api

import "time"

// Drivers a service's replicas can run with.
const (
	DriverExec   = "exec"
	DriverDocker = "docker"
)

// Run says how herd runs a service's replicas itself. A service with a Run
// section gets its backends from its running, healthy replicas; a service
// without one lists static Backends.
type Run struct {
	// Driver is exec (a process on the node) or docker (a container of a
	// local image through the node's Docker engine).
	Driver string `json:"driver" yaml:"driver"`
	// Command is the program (exec: a path or a name looked up in PATH;
	// docker: overrides the image's entrypoint when set).
	Command string `json:"command,omitempty" yaml:"command"`
	// Args are the command's arguments. "${PORT}" and "${HERD_PORT_<NAME>}"
	// in them are replaced with the replica's ports.
	Args []string `json:"args,omitempty" yaml:"args"`
	// Env is added to the replica's environment (exec: on top of a minimal
	// PATH/HOME; docker: on top of the image's).
	Env map[string]string `json:"env,omitempty" yaml:"env"`
	// WorkDir is the working directory (exec: default the replica's own
	// directory under the agent's data dir).
	WorkDir string `json:"work_dir,omitempty" yaml:"work_dir"`
	// User runs the process as this user (exec, needs root) or sets the
	// container user (docker).
	User string `json:"user,omitempty" yaml:"user"`
	// Image is the docker image, which must exist on the node.
	Image string `json:"image,omitempty" yaml:"image"`
	// Ports are the ports a replica listens on. herd allocates each a host
	// port from the node's range and passes it as $HERD_PORT_<NAME>; the
	// first is also $PORT and is the one the gateway routes to. Default:
	// one port named "http".
	Ports []Port `json:"ports,omitempty" yaml:"ports"`
	// StopSignal is sent to stop a replica (default SIGTERM); after
	// KillTimeout (default 10s) it gets SIGKILL.
	StopSignal  string   `json:"stop_signal,omitempty" yaml:"stop_signal"`
	KillTimeout Duration `json:"kill_timeout,omitempty" yaml:"kill_timeout"`
	// Replicas is how many copies should run. Default 1; 0 stops them all
	// but keeps the service.
	Replicas *int `json:"replicas,omitempty" yaml:"replicas"`
	// Resources each replica reserves on its node.
	Resources *Resources `json:"resources,omitempty" yaml:"resources"`
	// Constraints limit the nodes a replica may run on.
	Constraints []Constraint `json:"constraints,omitempty" yaml:"constraints"`
	// DistinctHosts puts at most one replica of the service on a node.
	DistinctHosts bool `json:"distinct_hosts,omitempty" yaml:"distinct_hosts"`
	// Spread spreads replicas evenly over the values of a node attribute;
	// today only "zone".
	Spread string `json:"spread,omitempty" yaml:"spread"`
	// Placement is binpack (fill the fullest node that fits) or spread
	// (the emptiest node). Default spread.
	Placement string `json:"placement,omitempty" yaml:"placement"`
	// Restart says when a replica that exits is started again.
	Restart *RestartPolicy `json:"restart,omitempty" yaml:"restart"`
	// Update says how a change of the run section rolls out.
	Update *UpdatePolicy `json:"update,omitempty" yaml:"update"`
	// Autoscale lets herd change Replicas within bounds.
	Autoscale *Autoscale `json:"autoscale,omitempty" yaml:"autoscale"`
}

// Port is one named port of a replica.
type Port struct {
	// Name is lower-case letters, digits and '_'; it becomes
	// $HERD_PORT_<NAME> in upper case.
	Name string `json:"name" yaml:"name"`
	// ContainerPort is the port inside the container (docker only);
	// default the allocated host port.
	ContainerPort int `json:"container_port,omitempty" yaml:"container_port"`
}

// Resources a replica reserves; the scheduler never places more on a node
// than it has, and the node enforces them where it can (cgroup v2).
type Resources struct {
	// CPU in millicores (1000 = one core). Default 100.
	CPU int `json:"cpu,omitempty" yaml:"cpu"`
	// MemoryMB is memory in MiB. Default 64.
	MemoryMB int `json:"memory_mb,omitempty" yaml:"memory_mb"`
}

// Constraint operators.
const (
	ConstraintEquals = "equals"
	ConstraintIn     = "in"
	ConstraintNot    = "not"
)

// Constraint limits placement by a node attribute: a label ("labels.disk"
// or just "disk"), "zone", "node" (the node name) or "driver".
type Constraint struct {
	Attribute string   `json:"attribute" yaml:"attribute"`
	Op        string   `json:"op" yaml:"op"`
	Values    []string `json:"values" yaml:"values"`
}

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// RestartPolicy says when and how fast a replica is restarted.
type RestartPolicy struct {
	// Policy is always (default), on-failure (exit code not 0) or never.
	Policy string `json:"policy,omitempty" yaml:"policy"`
	// Delay is the first back-off (default 1s); it doubles on each restart
	// within ResetAfter, up to MaxDelay (default 1m).
	Delay    Duration `json:"delay,omitempty" yaml:"delay"`
	MaxDelay Duration `json:"max_delay,omitempty" yaml:"max_delay"`
	// ResetAfter is how long a replica must run for its back-off to start
	// over (default 1m).
	ResetAfter Duration `json:"reset_after,omitempty" yaml:"reset_after"`
	// CrashLoopAfter is the number of restarts in a row, each before
	// ResetAfter, after which the replica is reported as crash-looping
	// (default 5). It is still restarted, at MaxDelay.
	CrashLoopAfter int `json:"crash_loop_after,omitempty" yaml:"crash_loop_after"`
}

// UpdatePolicy says how a new version of a service replaces the old one.
type UpdatePolicy struct {
	// MaxParallel is how many replicas are replaced at a time (default 1).
	MaxParallel int `json:"max_parallel,omitempty" yaml:"max_parallel"`
	// MinHealthyTime is how long a new replica must stay healthy before the
	// next one is replaced (default 2s).
	MinHealthyTime Duration `json:"min_healthy_time,omitempty" yaml:"min_healthy_time"`
	// HealthyDeadline is how long a new replica has to become healthy
	// before the rollout fails (default 1m).
	HealthyDeadline Duration `json:"healthy_deadline,omitempty" yaml:"healthy_deadline"`
	// AutoRevert rolls a failed rollout back to the last good version.
	AutoRevert bool `json:"auto_revert,omitempty" yaml:"auto_revert"`
}

// Autoscale keeps replicas between Min and Max, aiming at a target load.
type Autoscale struct {
	Min int `json:"min" yaml:"min"`
	Max int `json:"max" yaml:"max"`
	// TargetRPSPerReplica is the gateway request rate one replica should
	// take; TargetCPU is a CPU share of the reserved CPU in percent. One of
	// the two is required.
	TargetRPSPerReplica float64 `json:"target_rps_per_replica,omitempty" yaml:"target_rps_per_replica"`
	TargetCPU           int     `json:"target_cpu,omitempty" yaml:"target_cpu"`
	// Window is the stabilization window (default 1m): the scaler acts on
	// the highest recommendation over it when scaling down.
	Window Duration `json:"window,omitempty" yaml:"window"`
}

// Replica states, as reported by the node running it.
const (
	// ReplicaPending: placed (or waiting for a place), not started yet.
	ReplicaPending = "pending"
	// ReplicaStarting: the driver started it; its health check has not
	// passed yet.
	ReplicaStarting = "starting"
	// ReplicaRunning: started and healthy (or without a health check).
	ReplicaRunning = "running"
	// ReplicaBackoff: it exited or failed to start; waiting to restart.
	ReplicaBackoff = "backoff"
	// ReplicaStopped: stopped on purpose or exited under its policy.
	ReplicaStopped = "stopped"
	// ReplicaFailed: it cannot start (bad command, missing image) or
	// exited for good under its restart policy.
	ReplicaFailed = "failed"
	// ReplicaLost: its node was declared failed; a replacement is placed.
	ReplicaLost = "lost"
)

// Desired states of a replica, set by the leader.
const (
	DesiredRun  = "run"
	DesiredStop = "stop"
)

// Health of a replica.
const (
	HealthUnknown   = "unknown"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Replica is one placed copy of a service.
type Replica struct {
	// ID is unique in the cluster: "<service>-<8 hex>".
	ID      string `json:"id"`
	Service string `json:"service"`
	// Version is the service's run-spec version this replica runs.
	Version uint64 `json:"version"`
	// Node is the node it is placed on; empty while it waits for a place.
	Node string `json:"node,omitempty"`
	// Address is the node's address the replica's ports are reached at.
	Address string `json:"address,omitempty"`
	// Ports maps port names to allocated host ports.
	Ports map[string]int `json:"ports,omitempty"`
	// Desired is run or stop (set by the leader).
	Desired string `json:"desired"`
	// State and Health are reported by the node (State is lost when the
	// leader gave up on its node).
	State  string `json:"state"`
	Health string `json:"health"`
	// Restarts counts restarts by the node's supervisor.
	Restarts int `json:"restarts,omitempty"`
	// CrashLoop is true while restarts come faster than the policy allows.
	CrashLoop bool `json:"crash_loop,omitempty"`
	// Error is the last start or exit error, or why it waits for a place.
	Error string `json:"error,omitempty"`
	// ExitCode of the last exit (-1 when killed by a signal).
	ExitCode *int `json:"exit_code,omitempty"`
	// Resources reserved, and whether the node enforces them.
	Resources Resources `json:"resources"`
	Enforced  bool      `json:"enforced,omitempty"`
	// StartedAt is when it last started; HealthySince when it last became
	// healthy.
	StartedAt    time.Time `json:"started_at,omitzero"`
	HealthySince time.Time `json:"healthy_since,omitzero"`
	// Run is the run section (defaults applied) of the version this
	// replica runs, and Check the service's health check: a node restarts
	// a replica as it was placed even after the service has changed.
	Run   *Run         `json:"run,omitempty"`
	Check *HealthCheck `json:"check,omitempty"`
	// Replaces is the ID of the lost replica this one replaces.
	Replaces    string    `json:"replaces,omitempty"`
	CreateTime  time.Time `json:"create_time,omitzero"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// ReplicaStatus is what a node reports about one of its replicas.
type ReplicaStatus struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Health    string    `json:"health"`
	Restarts  int       `json:"restarts,omitempty"`
	CrashLoop bool      `json:"crash_loop,omitempty"`
	Error     string    `json:"error,omitempty"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	Enforced  bool      `json:"enforced,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// HealthySince is when it last became healthy (zero when it is not).
	HealthySince time.Time `json:"healthy_since,omitzero"`
}

// NodeResources is what a node offers to replicas.
type NodeResources struct {
	// CPU in millicores and memory in MiB available to replicas.
	CPU      int `json:"cpu"`
	MemoryMB int `json:"memory_mb"`
	// PortMin..PortMax is the range replica ports are allocated from.
	PortMin int `json:"port_min"`
	PortMax int `json:"port_max"`
}

// Node is a client agent that can run replicas.
type Node struct {
	Name   string            `json:"name"`
	Zone   string            `json:"zone,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Address is where its replicas' ports are reached.
	Address string `json:"address"`
	// Status is ready, down (gossip says failed or left) or unknown.
	Status string `json:"status"`
	// Eligible is false when an operator marked it ineligible or drains it.
	Eligible bool `json:"eligible"`
	Drain    bool `json:"drain,omitempty"`
	// Drivers maps a driver name to "" when usable, else why not.
	Drivers map[string]string `json:"drivers"`
	// Resources offered; CgroupV2 says whether they are enforced.
	Resources NodeResources `json:"resources"`
	CgroupV2  bool          `json:"cgroup_v2,omitempty"`
	// Used is what its placed replicas reserve (filled on reads).
	Used Resources `json:"used"`
	// UsageCPU is the CPU (millicores) its replicas use now, as its agent
	// reports it; only with /v1/nodes?usage.
	UsageCPU    *float64  `json:"usage_cpu,omitempty"`
	StatusSince time.Time `json:"status_since,omitzero"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Node statuses.
const (
	NodeReady   = "ready"
	NodeDown    = "down"
	NodeUnknown = "unknown"
)

// ReplicaUsage is what one replica uses now, as its node measures it.
type ReplicaUsage struct {
	ID string `json:"id"`
	// CPU in millicores over the last few seconds (0 where the driver
	// cannot tell).
	CPU float64 `json:"cpu"`
}
