package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

// minimal returns a valid service with only the required fields.
func minimal() api.Service {
	return api.Service{
		Name:     "web",
		Routes:   []api.Route{{Host: "example.com"}},
		Backends: []api.Backend{{Address: "10.0.0.1:80"}},
	}
}

func TestValidateServiceValid(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *api.Service)
	}{
		{name: "minimal", edit: func(s *api.Service) {}},
		{name: "kind service", edit: func(s *api.Service) { s.Kind = "service" }},
		{name: "no backends", edit: func(s *api.Service) { s.Backends = nil }},
		{name: "one-letter name", edit: func(s *api.Service) { s.Name = "a" }},
		{name: "63-letter name", edit: func(s *api.Service) { s.Name = strings.Repeat("a", 31) + "-" + strings.Repeat("9", 31) }},
		{name: "any host", edit: func(s *api.Service) { s.Routes = []api.Route{{PathPrefix: "/api"}} }},
		{name: "empty route", edit: func(s *api.Service) { s.Routes = []api.Route{{}} }},
		{name: "upper-case host", edit: func(s *api.Service) { s.Routes[0].Host = "WWW.Example.COM" }},
		{name: "wildcard", edit: func(s *api.Service) { s.Routes[0].Host = "*.example.com" }},
		{name: "IP host", edit: func(s *api.Service) { s.Routes[0].Host = "192.0.2.1" }},
		{name: "253-byte host", edit: func(s *api.Service) {
			s.Routes[0].Host = strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
		}},
		{name: "same host, other paths", edit: func(s *api.Service) {
			s.Routes = []api.Route{{Host: "a.com"}, {Host: "a.com", PathPrefix: "/api"}, {Host: "*.a.com"}, {PathPrefix: "/"}}
		}},
		{name: "unicode path", edit: func(s *api.Service) { s.Routes[0].PathPrefix = "/caf\u00e9/%20" }},
		{name: "tcp", edit: func(s *api.Service) {
			s.Protocol = "tcp"
			s.Routes = []api.Route{{Port: 1}, {Port: 65535}}
			s.HealthCheck = &api.HealthCheck{Type: "tcp"}
			s.Algorithm = "consistent_hash"
			s.HashKey = &api.HashKey{Source: "source_ip"}
			s.Retry = &api.Retry{Attempts: 2}
		}},
		{name: "backend addresses", edit: func(s *api.Service) {
			s.Backends = []api.Backend{
				{Address: "[::1]:80"}, {Address: "[fe80::1%eth0]:80"}, {Address: "localhost:1"},
				{Address: "my_service.local.:65535"}, {Address: "10.0.0.1:81", Weight: 1_000_000},
				{Address: "10.0.0.2:80", Labels: map[string]string{strings.Repeat("k", 63): "", "a": strings.Repeat("v", 1000)}},
			}
		}},
		{name: "slow start with least_conn", edit: func(s *api.Service) { s.Algorithm = "least_conn"; s.SlowStart = api.Duration(time.Minute) }},
		{name: "hash header", edit: func(s *api.Service) {
			s.Algorithm = "consistent_hash"
			s.HashKey = &api.HashKey{Source: "header", Name: "X-User-ID"}
		}},
		{name: "hash path", edit: func(s *api.Service) {
			s.Algorithm = "consistent_hash"
			s.HashKey = &api.HashKey{Source: "path"}
		}},
		{name: "panic off", edit: func(s *api.Service) { s.PanicThreshold = -1 }},
		{name: "panic 100", edit: func(s *api.Service) { s.PanicThreshold = 100 }},
		{name: "empty health check", edit: func(s *api.Service) { s.HealthCheck = &api.HealthCheck{}; s.RequireHealthyFirst = true }},
		{name: "empty outlier detection", edit: func(s *api.Service) { s.OutlierDetection = &api.OutlierDetection{Disabled: true} }},
		{name: "retry limits", edit: func(s *api.Service) {
			s.Retry = &api.Retry{Attempts: 10, BudgetPercent: 100, On: []string{"timeout", "5xx"}, PerTryTimeout: api.Duration(30 * time.Second)}
		}},
		{name: "per-try timeout equals request", edit: func(s *api.Service) {
			s.Retry = &api.Retry{PerTryTimeout: api.Duration(time.Minute)}
			s.Timeouts = &api.Timeouts{Request: api.Duration(time.Minute)}
		}},
		{name: "backend protocol http1", edit: func(s *api.Service) { s.BackendProtocol = "http1" }},
		{name: "backend protocol h2c", edit: func(s *api.Service) { s.BackendProtocol = "h2c" }},
		{name: "zero sections", edit: func(s *api.Service) {
			s.Retry, s.Timeouts, s.CircuitBreaker = &api.Retry{}, &api.Timeouts{}, &api.CircuitBreaker{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := minimal()
			tc.edit(&s)
			if err := ValidateService(&s); err != nil {
				t.Fatalf("ValidateService: %v", err)
			}
			if err := ValidateService(new(Defaults(s))); err != nil {
				t.Errorf("ValidateService(Defaults(s)): %v", err)
			}
		})
	}
}

func TestValidateBackendProtocol(t *testing.T) {
	tests := []struct {
		name     string
		protocol string
		backend  string
		want     string
	}{
		{name: "unknown", backend: "h2", want: `backend_protocol: "h2" is not one of http1, h2c`},
		{name: "h2c on tcp", protocol: "tcp", backend: "h2c", want: `backend_protocol: "h2c" is for http services only`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := minimal()
			s.Protocol, s.BackendProtocol = tc.protocol, tc.backend
			if tc.protocol == "tcp" {
				s.Routes = []api.Route{{Port: 5432}}
			}
			err := ValidateService(&s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidateServiceErrors(t *testing.T) {
	if err := ValidateService(nil); err == nil {
		t.Error("ValidateService(nil) succeeded")
	}

	s := minimal()
	s.Kind = "deployment"
	s.Name = ""
	s.Routes = append(s.Routes, api.Route{Host: "bad host"})
	s.Backends[0].Weight = -1
	s.Retry = &api.Retry{On: []string{"4xx"}}
	err := ValidateService(&s)
	if err == nil {
		t.Fatal("ValidateService succeeded")
	}
	var fields []string
	for _, e := range unjoin(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("problem %v is a %T, not a *FieldError", e, e)
		}
		fields = append(fields, fe.Field)
	}
	// Problems come in field order.
	if got, want := strings.Join(fields, " "), "name kind routes[1].host backends[0].weight retry.on[0]"; got != want {
		t.Errorf("fields %q, want %q", got, want)
	}
}

func TestFieldError(t *testing.T) {
	if got := (&FieldError{Field: "a.b", Msg: "bad"}).Error(); got != "a.b: bad" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&FieldError{Msg: "bad"}).Error(); got != "bad" {
		t.Errorf("Error() without a field = %q", got)
	}
}
