// Package exec is the driver that runs a replica as a process on the node.
//
// A replica is started in its own process group, with its stdout and stderr
// appended to "stdout.log" and "stderr.log" in the task's log directory,
// stdin from /dev/null, and a minimal environment (PATH from the agent,
// HOME set to the work directory) plus the task's. It is not tied to the
// agent: no parent-death signal, no pipe to the agent, so it keeps running
// when the agent restarts, and Recover re-attaches to it from the state
// blob (pid, process start time, process group, cgroup).
//
// Where the node has the cgroup v2 unified hierarchy with the cpu and memory
// controllers, each replica runs in its own cgroup, <root>/herd/<task ID>,
// with cpu.max and memory.max set from the task; elsewhere (cgroup v1,
// containers without a writable hierarchy) replicas run without limits and
// their handles report Enforced false.
//
// The driver runs on Linux only; elsewhere Available says why not.
package exec
