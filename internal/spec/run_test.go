package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

func runService() api.Service {
	return api.Service{
		Name:   "web",
		Routes: []api.Route{{Host: "example.com"}},
		Run:    &api.Run{Driver: "exec", Command: "/usr/bin/web", Args: []string{"--port", "${PORT}"}},
	}
}

func TestRunParseYAML(t *testing.T) {
	doc := `kind: service
name: web
routes:
  - path_prefix: /
health_check:
  path: /health
run:
  driver: exec
  command: /bin/web
  args: ["--listen", "127.0.0.1:${PORT}"]
  env: {MODE: prod}
  ports: [{name: http}, {name: admin}]
  replicas: 3
  resources: {cpu: 250, memory_mb: 128}
  constraints:
    - {attribute: zone, op: in, values: [eu, us]}
    - {attribute: labels.disk, op: equals, values: [ssd]}
  distinct_hosts: true
  spread: zone
  placement: binpack
  restart: {policy: on-failure, delay: 500ms, max_delay: 30s}
  update: {max_parallel: 2, min_healthy_time: 1s, healthy_deadline: 20s, auto_revert: true}
  stop_signal: INT
  kill_timeout: 5s
`
	objs, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r := objs[0].Service.Run
	if r == nil || r.Driver != "exec" || *r.Replicas != 3 || len(r.Ports) != 2 || r.Resources.CPU != 250 ||
		r.Constraints[1].Attribute != "labels.disk" || !r.DistinctHosts || r.Restart.Delay.D() != 500*time.Millisecond ||
		!r.Update.AutoRevert || r.KillTimeout.D() != 5*time.Second {
		t.Fatalf("parsed run: %+v", r)
	}
	d := RunDefaults(r)
	if d.StopSignal != "SIGINT" || d.Restart.ResetAfter.D() != DefaultResetAfter || d.Update.MaxParallel != 2 {
		t.Fatalf("defaults: %+v %+v %+v", d, d.Restart, d.Update)
	}
}

func TestRunParseRejectsUnknownField(t *testing.T) {
	doc := "kind: service\nname: web\nrun:\n  driver: exec\n  command: x\n  replica: 3\n"
	_, err := Parse([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("err = %v, want the unknown field named", err)
	}
	if _, err := ParseJSONService([]byte(`{"name":"web","run":{"driver":"exec","command":"x","replicas":"3"}}`)); err == nil || !strings.Contains(err.Error(), "run.replicas") {
		t.Fatalf("JSON err = %v, want run.replicas named", err)
	}
}

func TestRunValid(t *testing.T) {
	for name, edit := range map[string]func(*api.Service){
		"exec":      func(s *api.Service) {},
		"no routes": func(s *api.Service) { s.Routes = nil },
		"docker": func(s *api.Service) {
			s.Run = &api.Run{Driver: "docker", Image: "web:1", Ports: []api.Port{{Name: "http", ContainerPort: 8080}}}
		},
		"zero replicas": func(s *api.Service) { n := 0; s.Run.Replicas = &n },
		"autoscale": func(s *api.Service) {
			n := 2
			s.Run.Replicas = &n
			s.Run.Autoscale = &api.Autoscale{Min: 1, Max: 5, TargetCPU: 70}
		},
		"constraints": func(s *api.Service) {
			s.Run.Constraints = []api.Constraint{{Attribute: "node", Op: "not", Values: []string{"n1", "n2"}}}
		},
	} {
		s := runService()
		edit(&s)
		if err := ValidateService(&s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRunInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(*api.Service)
		want string
	}{
		{"no driver", func(s *api.Service) { s.Run.Driver = "" }, "run.driver: required"},
		{"bad driver", func(s *api.Service) { s.Run.Driver = "vm" }, `run.driver: "vm" is not one of exec, docker`},
		{"exec without command", func(s *api.Service) { s.Run.Command = "" }, "run.command: required by driver exec"},
		{"docker without image", func(s *api.Service) { s.Run.Driver = "docker" }, "run.image: required by driver docker"},
		{"image on exec", func(s *api.Service) { s.Run.Image = "x" }, "run.image: only for driver docker"},
		{"static backends too", func(s *api.Service) { s.Backends = []api.Backend{{Address: "10.0.0.1:80"}} }, "backends: a service with a run section"},
		{"reserved env", func(s *api.Service) { s.Run.Env = map[string]string{"PORT": "1"} }, "run.env.PORT: is set by herd"},
		{"bad env name", func(s *api.Service) { s.Run.Env = map[string]string{"1X": "1"} }, "run.env.1X: not a valid variable name"},
		{"relative work dir", func(s *api.Service) { s.Run.WorkDir = "tmp" }, "run.work_dir: \"tmp\" must be an absolute path"},
		{"port name", func(s *api.Service) { s.Run.Ports = []api.Port{{Name: "Web"}} }, "run.ports[0].name"},
		{"dup port", func(s *api.Service) { s.Run.Ports = []api.Port{{Name: "a"}, {Name: "a"}} }, `run.ports[1].name: "a" is also ports[0]`},
		{"container port on exec", func(s *api.Service) { s.Run.Ports = []api.Port{{Name: "a", ContainerPort: 80}} }, "run.ports[0].container_port: only for driver docker"},
		{"signal", func(s *api.Service) { s.Run.StopSignal = "SIGFOO" }, "run.stop_signal"},
		{"replicas", func(s *api.Service) { n := -1; s.Run.Replicas = &n }, "run.replicas: -1 is not in 0..10000"},
		{"cpu", func(s *api.Service) { s.Run.Resources = &api.Resources{CPU: -5} }, "run.resources.cpu"},
		{"constraint op", func(s *api.Service) {
			s.Run.Constraints = []api.Constraint{{Attribute: "zone", Op: "like", Values: []string{"x"}}}
		}, `run.constraints[0].op: "like"`},
		{"equals values", func(s *api.Service) {
			s.Run.Constraints = []api.Constraint{{Attribute: "zone", Op: "equals", Values: []string{"a", "b"}}}
		}, "run.constraints[0].values: equals takes exactly one value, not 2"},
		{"spread", func(s *api.Service) { s.Run.Spread = "rack" }, "run.spread"},
		{"placement", func(s *api.Service) { s.Run.Placement = "pack" }, "run.placement"},
		{"restart policy", func(s *api.Service) { s.Run.Restart = &api.RestartPolicy{Policy: "sometimes"} }, "run.restart.policy"},
		{"restart delays", func(s *api.Service) {
			s.Run.Restart = &api.RestartPolicy{Delay: api.Duration(time.Minute), MaxDelay: api.Duration(time.Second)}
		}, "run.restart.max_delay: 1s is less than delay 1m0s"},
		{"update deadline", func(s *api.Service) {
			s.Run.Update = &api.UpdatePolicy{MinHealthyTime: api.Duration(time.Minute), HealthyDeadline: api.Duration(time.Second)}
		}, "run.update.healthy_deadline"},
		{"autoscale targets", func(s *api.Service) { s.Run.Autoscale = &api.Autoscale{Min: 1, Max: 3} }, "run.autoscale: set exactly one of"},
		{"autoscale bounds", func(s *api.Service) {
			n := 9
			s.Run.Replicas = &n
			s.Run.Autoscale = &api.Autoscale{Min: 1, Max: 3, TargetCPU: 50}
		}, "run.replicas: 9 is outside autoscale min..max (1..3)"},
		{"no routes without run", func(s *api.Service) { s.Run = nil; s.Routes = nil }, "routes: at least one route is required"},
	}
	for _, tt := range tests {
		s := runService()
		tt.edit(&s)
		err := ValidateService(&s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRunVersionKey(t *testing.T) {
	a := runService().Run
	b := runService().Run
	n := 7
	b.Replicas = &n
	b.Update = &api.UpdatePolicy{MaxParallel: 3}
	if RunVersionKey(a) != RunVersionKey(b) {
		t.Fatal("replicas and update changed the version key")
	}
	b.Env = map[string]string{"A": "1"}
	if RunVersionKey(a) == RunVersionKey(b) {
		t.Fatal("env did not change the version key")
	}
	// Defaults written out are the same version as defaults left out.
	c := runService().Run
	c.StopSignal = "TERM"
	c.Ports = []api.Port{{Name: "http"}}
	if RunVersionKey(a) != RunVersionKey(c) {
		t.Fatalf("explicit defaults changed the key:\n%s\n%s", RunVersionKey(a), RunVersionKey(c))
	}
}
