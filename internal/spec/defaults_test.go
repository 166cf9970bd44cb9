package spec

import (
	"reflect"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/health"
)

func TestDefaults(t *testing.T) {
	s := minimal()
	s.Backends = append(s.Backends, api.Backend{Address: "10.0.0.2:80", Weight: 3, Labels: map[string]string{"a": "b"}})
	s.HealthCheck = &api.HealthCheck{}
	got := Defaults(s)
	want := api.Service{
		Kind:     "service",
		Name:     "web",
		Protocol: "http",
		Routes:   []api.Route{{Host: "example.com", PathPrefix: "/"}},
		Backends: []api.Backend{
			{Address: "10.0.0.1:80", Weight: 1},
			{Address: "10.0.0.2:80", Weight: 3, Labels: map[string]string{"a": "b"}},
		},
		Algorithm: "round_robin",
		HealthCheck: &api.HealthCheck{
			Type: "http", Path: "/", ExpectStatus: []int{200, 399},
			Interval: dur(5 * time.Second), Timeout: dur(2 * time.Second), Rise: 2, Fall: 3,
		},
		OutlierDetection: &api.OutlierDetection{
			Consecutive5xx: 5, ConsecutiveConnectFailure: 3, BaseEjectionTime: dur(30 * time.Second),
			MaxEjectionTime: dur(300 * time.Second), MaxEjectionPercent: 50,
		},
		PanicThreshold: 50,
		Retry:          &api.Retry{Attempts: 3, PerTryTimeout: dur(30 * time.Second), BudgetPercent: 20, On: []string{"5xx", "timeout"}},
		Timeouts:       &api.Timeouts{Connect: dur(2 * time.Second), Request: dur(30 * time.Second), Idle: dur(60 * time.Second)},
		CircuitBreaker: &api.CircuitBreaker{MaxConnections: 1024, MaxPending: 128, MaxRequests: 1024},
		DrainTimeout:   dur(30 * time.Second),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults =\n%+v\nwant\n%+v", got, want)
	}

	// The copy shares nothing with s.
	got.Routes[0].Host = "x"
	got.Backends[1].Labels["a"] = "changed"
	got.HealthCheck.Path = "/x"
	if s.Routes[0].Host != "example.com" || s.Backends[1].Labels["a"] != "b" || s.Backends[0].Weight != 0 || s.HealthCheck.Path != "" {
		t.Errorf("Defaults changed its argument: %+v", s)
	}

	// No health check stays no health check.
	if d := Defaults(minimal()); d.HealthCheck != nil {
		t.Errorf("Defaults added a health check: %+v", d.HealthCheck)
	}

	// Explicit values are kept: the full service only gains what it leaves out.
	full := Defaults(fullService)
	wantFull := fullService
	wantFull.Routes = []api.Route{
		{Host: "Example.com", PathPrefix: "/api"},
		{Host: "*.example.com", PathPrefix: "/"},
		{PathPrefix: "/static/"},
	}
	wantFull.Backends = []api.Backend{fullService.Backends[0], fullService.Backends[1], fullService.Backends[2]}
	wantFull.Backends[2].Weight = 1
	if !reflect.DeepEqual(full, wantFull) {
		t.Errorf("Defaults(full) =\n%+v\nwant\n%+v", full, wantFull)
	}
}

func TestDefaultsTCP(t *testing.T) {
	s := api.Service{
		Name: "db", Protocol: "tcp", Routes: []api.Route{{Port: 5432}},
		HealthCheck: &api.HealthCheck{Type: "tcp"},
		Retry:       &api.Retry{PerTryTimeout: dur(time.Second)},
		Timeouts:    &api.Timeouts{Request: dur(5 * time.Second)},
	}
	d := Defaults(s)
	if d.Routes[0] != (api.Route{Port: 5432}) {
		t.Errorf("tcp route %+v gained http fields", d.Routes[0])
	}
	if d.Retry.On != nil || d.Retry.Attempts != 3 || d.Retry.PerTryTimeout != dur(time.Second) {
		t.Errorf("tcp retry %+v", d.Retry)
	}
	if h := d.HealthCheck; h.Path != "" || h.ExpectStatus != nil || h.Interval != dur(5*time.Second) {
		t.Errorf("tcp health check %+v", h)
	}
	if d.Timeouts.Request != dur(5*time.Second) || d.Timeouts.Connect != dur(2*time.Second) {
		t.Errorf("timeouts %+v", d.Timeouts)
	}
	if err := ValidateService(&d); err != nil {
		t.Errorf("Defaults of a valid tcp service: %v", err)
	}
}

func TestCheckSpec(t *testing.T) {
	if CheckSpec(nil) != nil {
		t.Error("CheckSpec(nil) != nil")
	}
	got := CheckSpec(&api.HealthCheck{
		Path: "/healthz", Host: "h", ExpectStatus: []int{200, 204}, BodyMatch: "ok",
		Interval: dur(10 * time.Second), Jitter: dur(time.Second), Fall: 5,
	})
	want := &health.CheckSpec{
		Type: "http", Path: "/healthz", Host: "h", ExpectStatus: [2]int{200, 204}, BodyMatch: "ok",
		Interval: 10 * time.Second, Timeout: 2 * time.Second, Jitter: time.Second, Rise: 2, Fall: 5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CheckSpec = %+v, want %+v", got, want)
	}
	got = CheckSpec(&api.HealthCheck{Type: "tcp", ExpectStatus: []int{200}})
	want = &health.CheckSpec{Type: "tcp", Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CheckSpec(tcp) = %+v, want %+v", got, want)
	}
}

func TestOutlierSpec(t *testing.T) {
	def := health.OutlierSpec{
		Consecutive5xx: 5, ConsecutiveConnectFailure: 3, BaseEjectionTime: 30 * time.Second,
		MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50,
	}
	if got := OutlierSpec(nil); got != def {
		t.Errorf("OutlierSpec(nil) = %+v, want %+v", got, def)
	}
	got := OutlierSpec(&api.OutlierDetection{Consecutive5xx: 2, BaseEjectionTime: dur(10 * time.Minute), Disabled: true})
	want := health.OutlierSpec{
		Consecutive5xx: 2, ConsecutiveConnectFailure: 3, BaseEjectionTime: 10 * time.Minute,
		MaxEjectionTime: 10 * time.Minute, MaxEjectionPercent: 50, Disabled: true,
	}
	if got != want {
		t.Errorf("OutlierSpec = %+v, want %+v", got, want)
	}
}
