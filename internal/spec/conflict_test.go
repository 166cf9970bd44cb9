package spec

import (
	"testing"

	"github.com/herd-cluster/herd/api"
)

func TestRoutesConflict(t *testing.T) {
	web := &api.Service{Name: "web", Routes: []api.Route{{Host: "a.com", PathPrefix: "/api"}, {Host: "b.com"}}}
	anyHost := &api.Service{Name: "any", Routes: []api.Route{{PathPrefix: "/static"}}}
	db := &api.Service{Name: "db", Protocol: "tcp", Routes: []api.Route{{Port: 5432}}}
	wild := &api.Service{Name: "wild", Routes: []api.Route{{Host: "*.c.com"}}}
	others := []*api.Service{web, nil, anyHost, db, wild}

	tests := []struct {
		name   string
		routes []api.Route
		tcp    bool
		want   string
	}{
		{name: "same host and path", routes: []api.Route{{Host: "x.com"}, {Host: "a.com", PathPrefix: "/api"}},
			want: `route host "a.com" path_prefix "/api" is already used by service "web"`},
		{name: "host in other case", routes: []api.Route{{Host: "A.Com", PathPrefix: "/api"}},
			want: `route host "A.Com" path_prefix "/api" is already used by service "web"`},
		{name: "empty path is /", routes: []api.Route{{Host: "b.com", PathPrefix: "/"}},
			want: `route host "b.com" path_prefix "/" is already used by service "web"`},
		{name: "any host", routes: []api.Route{{PathPrefix: "/static"}},
			want: `route path_prefix "/static" for any host is already used by service "any"`},
		{name: "same wildcard", routes: []api.Route{{Host: "*.C.com"}},
			want: `route host "*.C.com" path_prefix "/" is already used by service "wild"`},
		{name: "tcp port", routes: []api.Route{{Port: 5432}}, tcp: true,
			want: `route port 5432 is already used by service "db"`},
		{name: "other path", routes: []api.Route{{Host: "a.com", PathPrefix: "/api/v2"}, {Host: "a.com"}}},
		{name: "wildcard vs exact", routes: []api.Route{{Host: "x.c.com"}, {Host: "*.a.com", PathPrefix: "/api"}}},
		{name: "named host vs any host", routes: []api.Route{{Host: "a.com", PathPrefix: "/static"}}},
		{name: "other port", routes: []api.Route{{Port: 5433}}, tcp: true},
		{name: "tcp vs http", routes: []api.Route{{Port: 80}}, tcp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &api.Service{Name: "new", Routes: tc.routes}
			if tc.tcp {
				s.Protocol = "tcp"
			}
			if got := RoutesConflict(s, others); got != tc.want {
				t.Errorf("RoutesConflict = %q, want %q", got, tc.want)
			}
		})
	}

	// Replacing a service: the caller leaves the stored one out of others,
	// so a service never conflicts with its own old routes. Passed in, it
	// would.
	if got := RoutesConflict(web, []*api.Service{anyHost, db}); got != "" {
		t.Errorf("RoutesConflict without web itself = %q", got)
	}
	if got := RoutesConflict(web, []*api.Service{web}); got == "" {
		t.Error("a service in others conflicts with itself; callers must leave it out")
	}
	if RoutesConflict(nil, others) != "" || RoutesConflict(web, nil) != "" {
		t.Error("conflict with nothing")
	}
}
