package supervisor

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

func TestTaskForSubstitutesPorts(t *testing.T) {
	r := &api.Replica{ID: "web-1", Service: "web", Node: "n1", Ports: map[string]int{"http": 20001, "admin": 20002},
		Resources: api.Resources{CPU: 250, MemoryMB: 128}}
	run := spec.RunDefaults(&api.Run{Driver: api.DriverExec, Command: "/bin/web",
		Args:  []string{"--listen=:${PORT}", "--admin=${HERD_PORT_ADMIN}", "${HOME}", "$PORT"},
		Env:   map[string]string{"MODE": "prod"},
		Ports: []api.Port{{Name: "http"}, {Name: "admin"}}, StopSignal: "INT"})
	task := taskFor(r, run, "/data/replicas/web-1")
	want := []string{"--listen=:20001", "--admin=20002", "${HOME}", "$PORT"}
	for i, a := range want {
		if task.Args[i] != a {
			t.Errorf("arg %d = %q, want %q", i, task.Args[i], a)
		}
	}
	for k, v := range map[string]string{"PORT": "20001", "HERD_PORT_HTTP": "20001", "HERD_PORT_ADMIN": "20002",
		"MODE": "prod", "HERD_REPLICA_ID": "web-1", "HERD_SERVICE": "web", "HERD_NODE": "n1"} {
		if task.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, task.Env[k], v)
		}
	}
	if task.StopSignal != syscall.SIGINT || task.KillTimeout != spec.DefaultKillTimeout || task.CPU != 250 ||
		task.WorkDir != filepath.Join("/data/replicas/web-1", "work") || task.LogDir != "/data/replicas/web-1/logs" {
		t.Fatalf("task: %+v", task)
	}
	// A container keeps its image's working directory.
	drun := spec.RunDefaults(&api.Run{Driver: api.DriverDocker, Image: "web:1"})
	if d := taskFor(r, drun, "/x"); d.WorkDir != "" {
		t.Fatalf("docker work dir = %q", d.WorkDir)
	}
}

func TestStatusesEqual(t *testing.T) {
	one, two := 1, 2
	a := []api.ReplicaStatus{{ID: "a", State: api.ReplicaRunning, ExitCode: &one}}
	b := []api.ReplicaStatus{{ID: "a", State: api.ReplicaRunning, ExitCode: &one}}
	if !statusesEqual(a, b) {
		t.Fatal("equal statuses differ")
	}
	b[0].ExitCode = &two
	if statusesEqual(a, b) {
		t.Fatal("a different exit code went unnoticed")
	}
	b[0].ExitCode = nil
	if statusesEqual(a, b) || statusesEqual(a, nil) {
		t.Fatal("a missing exit code or list went unnoticed")
	}
}
