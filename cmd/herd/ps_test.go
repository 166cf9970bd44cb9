package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (run with -update if the change is right):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleReplicas() []*api.Replica {
	code := 1
	return []*api.Replica{
		{
			ID: "web-1a2b3c4d", Service: "web", Version: 42, Node: "client1", Address: "10.0.0.5",
			Ports: map[string]int{"admin": 20002, "http": 20001}, Desired: api.DesiredRun,
			State: api.ReplicaRunning, Health: api.HealthHealthy, Restarts: 1,
			StartedAt: testNow.Add(-3*time.Minute - 5*time.Second), CreateTime: testNow.Add(-2 * time.Hour),
			Run: &api.Run{Ports: []api.Port{{Name: "http"}, {Name: "admin"}}},
		},
		{
			ID: "web-9f8e7d6c", Service: "web", Version: 42, Node: "client2",
			Ports: map[string]int{"http": 20007}, Desired: api.DesiredRun,
			State: api.ReplicaBackoff, Health: api.HealthUnknown, Restarts: 6, CrashLoop: true, ExitCode: &code,
			Error:      "exited with code 1: panic: cannot open /var/lib/web/config.yaml: no such file or directory",
			CreateTime: testNow.Add(-50 * time.Hour),
		},
		{
			ID: "api-00c0ffee", Service: "api", Version: 7, Desired: api.DesiredStop,
			State: api.ReplicaPending, Health: api.HealthUnknown, Error: "no node satisfies: ineligible on 2 nodes",
			CreateTime: testNow.Add(-12 * time.Second),
		},
	}
}

func TestPrintReplicasGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		all  bool
	}{
		{name: "ps.golden", all: false},
		{name: "ps_all.golden", all: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printReplicas(&b, visibleReplicas(sampleReplicas(), tc.all), tc.all, testNow); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.String())
		})
	}
}

func TestPrintNodeGolden(t *testing.T) {
	n := &api.Node{
		Name: "client1", Zone: "eu-1a", Labels: map[string]string{"disk": "ssd", "arch": "amd64"},
		Address: "10.0.0.5", Status: api.NodeReady, Eligible: false, Drain: true,
		Drivers:   map[string]string{"exec": "", "docker": "no Docker engine at /var/run/docker.sock"},
		Resources: api.NodeResources{CPU: 4000, MemoryMB: 7900, PortMin: 20000, PortMax: 32000},
		Used:      api.Resources{CPU: 200, MemoryMB: 128}, StatusSince: testNow.Add(-3 * time.Hour), ModifyIndex: 17,
	}
	var b bytes.Buffer
	if err := printNode(&b, n, visibleReplicas(sampleReplicas()[:1], false), false, testNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "node_show.golden", b.String())
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{ago: -time.Second, want: "0s"}, // clocks disagree: never negative
		{ago: 0, want: "0s"},
		{ago: 59 * time.Second, want: "59s"},
		{ago: 3*time.Minute + 59*time.Second, want: "3m"},
		{ago: 2 * time.Hour, want: "2h"},
		{ago: 47 * time.Hour, want: "47h"},
		{ago: 50 * time.Hour, want: "2d"},
	} {
		if got := age(testNow, testNow.Add(-tc.ago)); got != tc.want {
			t.Errorf("age of %s: %q, want %q", tc.ago, got, tc.want)
		}
	}
	if got := age(testNow, time.Time{}); got != "" {
		t.Errorf("age of the zero time: %q, want empty (printed as -)", got)
	}
}

func TestPortsString(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    *api.Replica
		want string
	}{
		{name: "run order first", r: sampleReplicas()[0], want: "http=20001,admin=20002"},
		{name: "no run section: by name", r: &api.Replica{Ports: map[string]int{"b": 2, "a": 1}}, want: "a=1,b=2"},
		{name: "none", r: &api.Replica{}, want: ""},
	} {
		if got := portsString(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestShorten(t *testing.T) {
	if got := shorten("short", 10); got != "short" {
		t.Errorf("shorten kept %q", got)
	}
	if got := shorten("ééééééééééééé", 10); got != "ééééééé..." {
		t.Errorf("shorten cut %q (must count runes)", got)
	}
}

func TestReplicaLabel(t *testing.T) {
	for _, tc := range []struct {
		r    api.Replica
		want string
	}{
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaPending}, want: "pending"},
		{r: api.Replica{Desired: api.DesiredRun, State: api.ReplicaPending, Error: "no room"}, want: "waiting for a node: no room"},
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaStarting, Health: api.HealthUnknown}, want: "starting"},
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaStarting, Health: api.HealthUnhealthy}, want: "starting (health check failing)"},
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthHealthy}, want: "healthy"},
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthUnhealthy}, want: "unhealthy"},
		{r: api.Replica{Node: "n", Desired: api.DesiredRun, State: api.ReplicaBackoff, Error: "exit 1"}, want: "backoff: exit 1"},
		{r: api.Replica{Node: "n", Desired: api.DesiredStop, State: api.ReplicaRunning}, want: "stopping"},
		{r: api.Replica{Node: "n", Desired: api.DesiredStop, State: api.ReplicaStopped}, want: "stopped"},
		{r: api.Replica{Desired: api.DesiredStop, State: api.ReplicaStopped, Error: "no room"}, want: "stopped"},
	} {
		if got := replicaLabel(&tc.r); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestProgressPrintsChangesOnly(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "web")
	a := &api.Replica{ID: "web-a", Node: "n", Desired: api.DesiredRun, State: api.ReplicaRunning, Health: api.HealthHealthy}
	p.seed([]*api.Replica{a})
	c := &api.Replica{ID: "web-c", Node: "n", Desired: api.DesiredRun, State: api.ReplicaPending}
	p.update([]*api.Replica{a, c})
	p.update([]*api.Replica{a, c}) // nothing changed: nothing printed
	c2 := *c
	c2.State, c2.Health = api.ReplicaRunning, api.HealthHealthy
	p.update([]*api.Replica{&c2})
	want := "web: replica web-c pending\nweb: replica web-c healthy\nweb: replica web-a removed\n"
	if b.String() != want {
		t.Fatalf("progress printed:\n%s\nwant:\n%s", b.String(), want)
	}
}

// The run example in apply's help is a valid spec.
func TestApplyHelpExampleParses(t *testing.T) {
	long := newApplyCmd(&globals{}).Long
	_, rest, ok := strings.Cut(long, "Example of a service herd runs (api.yaml):\n")
	if !ok {
		t.Fatal("apply's help has no run example")
	}
	doc, _, _ := strings.Cut(rest, "\n\n")
	var lines []string
	for _, l := range strings.Split(doc, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	objs, err := spec.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("the example does not parse: %v\n%s", err, doc)
	}
	if len(objs) != 1 || objs[0].Service.Run == nil || *objs[0].Service.Run.Replicas != 3 {
		t.Fatalf("the example parsed to %+v", objs)
	}
}
