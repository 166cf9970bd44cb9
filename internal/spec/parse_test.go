package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func dur(d time.Duration) api.Duration { return api.Duration(d) }

// fullService is testdata/full.yaml decoded.
var fullService = api.Service{
	Kind:     "service",
	Name:     "web",
	Protocol: "http",
	Routes: []api.Route{
		{Host: "Example.com", PathPrefix: "/api"},
		{Host: "*.example.com"},
		{PathPrefix: "/static/"},
	},
	Backends: []api.Backend{
		{Address: "10.0.0.1:8080", Weight: 5, Zone: "eu-1a", Labels: map[string]string{"version": "v2", "rack": "r1"}},
		{Address: "[fd00::2]:8080", Weight: 1, Zone: "eu-1b"},
		{Address: "web-3.internal:8080", Drain: true},
	},
	Algorithm: "least_request",
	ZoneAware: true,
	SlowStart: dur(30 * time.Second),
	HealthCheck: &api.HealthCheck{
		Type: "http", Path: "/healthz", Host: "example.com", ExpectStatus: []int{200, 299}, BodyMatch: "ok",
		Interval: dur(10 * time.Second), Timeout: dur(time.Second), Jitter: dur(500 * time.Millisecond), Rise: 3, Fall: 2,
	},
	RequireHealthyFirst: true,
	OutlierDetection: &api.OutlierDetection{
		Consecutive5xx: 10, ConsecutiveConnectFailure: 2, BaseEjectionTime: dur(15 * time.Second),
		MaxEjectionTime: dur(2 * time.Minute), MaxEjectionPercent: 30,
	},
	PanicThreshold: -1,
	Retry:          &api.Retry{Attempts: 2, PerTryTimeout: dur(2 * time.Second), BudgetPercent: 10, On: []string{"5xx"}},
	Timeouts:       &api.Timeouts{Connect: dur(time.Second), Request: dur(10 * time.Second), Idle: dur(90 * time.Second)},
	CircuitBreaker: &api.CircuitBreaker{MaxConnections: 100, MaxPending: 10, MaxRequests: 200},
	DrainTimeout:   dur(time.Minute),
}

func TestParseValid(t *testing.T) {
	type obj struct {
		name string
		line int
	}
	tests := []struct {
		name string
		file string
		want []obj
	}{
		{name: "every field", file: "full.yaml", want: []obj{{"web", 2}}},
		{name: "minimal", file: "minimal.yaml", want: []obj{{"api", 1}}},
		{name: "two services and empty documents", file: "multi.yaml", want: []obj{{"shop", 3}, {"db", 18}}},
		{name: "comments and no backends", file: "comments.yaml", want: []obj{{"docs", 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Parse(readFile(t, tc.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []obj
			for _, o := range objs {
				if o.Kind != KindService || o.Service == nil {
					t.Fatalf("object %+v is not a service", o)
				}
				got = append(got, obj{o.Service.Name, o.Line})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got objects %v, want %v", got, tc.want)
			}
		})
	}

	objs, err := Parse(readFile(t, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*objs[0].Service, fullService) {
		t.Errorf("full.yaml decoded to\n%+v\nwant\n%+v", *objs[0].Service, fullService)
	}
}

// svc returns a service document: the minimal valid service with the
// top-level fields of extra added, replacing the minimal ones of the same
// names.
func svc(extra string) string {
	base := []struct{ key, text string }{
		{"kind", "kind: service\n"},
		{"name", "name: web\n"},
		{"routes", "routes:\n  - host: example.com\n"},
		{"backends", "backends:\n  - address: 10.0.0.1:80\n"},
	}
	var b strings.Builder
	for _, f := range base {
		if !strings.HasPrefix(extra, f.key+":") && !strings.Contains(extra, "\n"+f.key+":") {
			b.WriteString(f.text)
		}
	}
	b.WriteString(extra)
	return b.String()
}

func TestParseInvalid(t *testing.T) {
	const tcp = "protocol: tcp\nroutes: [{port: 5432}]\n"
	tests := []struct {
		name string
		in   string
		// want are substrings of the error, beyond "document 1".
		want []string
	}{
		// name
		{name: "name missing", in: "kind: service\nroutes: [{host: a.com}]\n", want: []string{"name: required"}},
		{name: "name upper-case", in: svc("name: Web\n"), want: []string{`service "Web": name: "Web" must be 1-63 lower-case letters`}},
		{name: "name too long", in: svc("name: " + strings.Repeat("a", 64) + "\n"), want: []string{"name: "}},
		{name: "name leading dash", in: svc("name: -web\n"), want: []string{`name: "-web" must be`}},
		{name: "name trailing dash", in: svc("name: web-\n"), want: []string{`name: "web-" must be`}},
		{name: "name underscore", in: svc("name: my_web\n"), want: []string{`name: "my_web" must be`}},

		// kind
		{name: "kind missing", in: "name: web\nroutes: [{host: a.com}]\n", want: []string{"document 1 (line 1): kind: missing (want one of: service, vip)"}},
		{name: "kind empty", in: svc("kind: \"\"\n"), want: []string{"kind: missing (want one of: service, vip)"}},
		{name: "kind unknown", in: svc("kind: deployment\n"), want: []string{`kind: "deployment" is not a known kind (want one of: service, vip)`}},
		{name: "kind wrong case", in: svc("kind: Service\n"), want: []string{`kind: "Service" is not a known kind`}},
		{name: "kind a list", in: svc("kind: [service]\n"), want: []string{"kind: must be a string"}},

		// protocol
		{name: "protocol unknown", in: svc("protocol: udp\n"), want: []string{`protocol: "udp" is not one of http, tcp`}},

		// routes
		{name: "no routes", in: svc("routes: []\n"), want: []string{"routes: at least one route is required"}},
		{name: "routes missing", in: "kind: service\nname: web\n", want: []string{"routes: at least one route is required"}},
		{name: "host with space", in: svc("routes: [{host: exa mple.com}]\n"), want: []string{`document 1 (line 1): service "web": routes[0].host: "exa mple.com" is not a valid host name`}},
		{name: "host with port", in: svc("routes: [{host: \"a.com:80\"}]\n"), want: []string{`routes[0].host: "a.com:80" is not a valid host name: remove the port`}},
		{name: "host with path", in: svc("routes: [{host: a.com/api}]\n"), want: []string{`routes[0].host: "a.com/api" is not a valid host name: put the path in path_prefix`}},
		{name: "wildcard inside", in: svc("routes: [{host: \"a.*.com\"}]\n"), want: []string{`routes[0].host: "a.*.com" is not a valid host name: a wildcard must be the whole first label`}},
		{name: "wildcard partial label", in: svc("routes: [{host: \"*a.com\"}]\n"), want: []string{"routes[0].host: \"*a.com\" is not a valid host name: a wildcard"}},
		{name: "wildcard alone", in: svc("routes: [{host: \"*\"}]\n"), want: []string{`routes[0].host: "*" is not`}},
		{name: "host label too long", in: svc("routes: [{host: " + strings.Repeat("a", 64) + ".com}]\n"), want: []string{"routes[0].host: "}},
		{name: "host too long", in: svc("routes: [{host: " + strings.Repeat("abcdefghi.", 26) + "com}]\n"), want: []string{"routes[0].host: ", "longer than 253 bytes"}},
		{name: "host label dash", in: svc("routes: [{host: -a.com}]\n"), want: []string{`routes[0].host: "-a.com"`}},
		{name: "host empty label", in: svc("routes: [{host: a..com}]\n"), want: []string{`routes[0].host: "a..com"`}},
		{name: "host underscore", in: svc("routes: [{host: a_b.com}]\n"), want: []string{`routes[0].host: "a_b.com"`}},
		{name: "path without slash", in: svc("routes: [{path_prefix: api}]\n"), want: []string{`routes[0].path_prefix: "api" must start with /`}},
		{name: "path with query", in: svc("routes: [{path_prefix: \"/api?x=1\"}]\n"), want: []string{"routes[0].path_prefix: ", "must not contain ? or #"}},
		{name: "path with fragment", in: svc("routes: [{path_prefix: \"/api#x\"}]\n"), want: []string{"routes[0].path_prefix: ", "must not contain ? or #"}},
		{name: "path with space", in: svc("routes: [{path_prefix: \"/a b\"}]\n"), want: []string{"routes[0].path_prefix: ", "whitespace or control"}},
		{name: "path with control", in: svc("routes: [{path_prefix: \"/a\\x01\"}]\n"), want: []string{"routes[0].path_prefix: ", "whitespace or control"}},
		{name: "path too long", in: svc("routes: [{path_prefix: /" + strings.Repeat("a", 1024) + "}]\n"), want: []string{"routes[0].path_prefix: longer than 1024 bytes"}},
		{name: "port on http route", in: svc("routes: [{host: a.com, port: 80}]\n"), want: []string{"routes[0].port: only for tcp services"}},
		{name: "tcp port missing", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{}]\n", want: []string{"routes[0].port: 0 is not a port (1-65535)"}},
		{name: "tcp port too large", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{port: 70000}]\n", want: []string{"routes[0].port: 70000 is not a port"}},
		{name: "tcp port negative", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{port: -1}]\n", want: []string{"routes[0].port: -1 is not a port"}},
		{name: "tcp route host", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{port: 5432, host: a.com}]\n", want: []string{"routes[0].host: only for http services"}},
		{name: "tcp route path", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{port: 5432, path_prefix: /}]\n", want: []string{"routes[0].path_prefix: only for http services"}},
		{name: "duplicate route", in: svc("routes: [{host: a.com, path_prefix: /x}, {host: b.com}, {host: A.COM, path_prefix: /x}]\n"), want: []string{"routes[2]: same as routes[0]"}},
		{name: "duplicate default path", in: svc("routes: [{host: a.com}, {host: a.com, path_prefix: /}]\n"), want: []string{"routes[1]: same as routes[0]"}},
		{name: "duplicate tcp route", in: "kind: service\nname: db\nprotocol: tcp\nroutes: [{port: 5432}, {port: 5432}]\n", want: []string{"routes[1]: same as routes[0]"}},

		// backends
		{name: "backend no port", in: svc("backends: [{address: 10.0.0.1}]\n"), want: []string{`backends[0].address: "10.0.0.1" is not host:port`}},
		{name: "backend address missing", in: svc("backends: [{weight: 2}]\n"), want: []string{"backends[0].address: required"}},
		{name: "backend no host", in: svc("backends: [{address: \":80\"}]\n"), want: []string{`backends[0].address: ":80" has no host`}},
		{name: "backend port zero", in: svc("backends: [{address: \"a:0\"}]\n"), want: []string{`backends[0].address: "a:0": port "0" is not a number 1-65535`}},
		{name: "backend port large", in: svc("backends: [{address: \"a:65536\"}]\n"), want: []string{`backends[0].address: "a:65536": port`}},
		{name: "backend port name", in: svc("backends: [{address: \"a:http\"}]\n"), want: []string{`backends[0].address: "a:http": port "http"`}},
		{name: "backend port signed", in: svc("backends: [{address: \"a:+80\"}]\n"), want: []string{`backends[0].address: "a:+80": port`}},
		{name: "backend bad host", in: svc("backends: [{address: \"a b:80\"}]\n"), want: []string{`backends[0].address: "a b:80": "a b" is neither an IP address nor a host name`}},
		{name: "backend url", in: svc("backends: [{address: \"http://a:80\"}]\n"), want: []string{"backends[0].address: "}},
		{name: "duplicate backend", in: svc("backends: [{address: \"a:80\"}, {address: \"b:80\"}, {address: \"A:080\"}]\n"), want: []string{`backends[2].address: "A:080" is listed twice (also backends[0])`}},
		{name: "duplicate backend ipv6", in: svc("backends: [{address: \"[fd00::1]:80\"}, {address: \"[fd00:0::1]:80\"}]\n"), want: []string{"backends[1].address: ", "listed twice"}},
		{name: "weight negative", in: svc("backends: [{address: \"a:80\", weight: -1}]\n"), want: []string{"backends[0].weight: must not be negative"}},
		{name: "weight too large", in: svc("backends: [{address: \"a:80\", weight: 1000001}]\n"), want: []string{"backends[0].weight: 1000001 is more than the maximum 1000000"}},
		{name: "label key empty", in: svc("backends: [{address: \"a:80\", labels: {\"\": x}}]\n"), want: []string{"backends[0].labels: a label key is empty"}},
		{name: "label key long", in: svc("backends: [{address: \"a:80\", labels: {" + strings.Repeat("k", 64) + ": x}}]\n"), want: []string{"backends[0].labels: key ", "longer than 63 bytes"}},

		// algorithm and hash_key
		{name: "algorithm unknown", in: svc("algorithm: fastest\n"), want: []string{`algorithm: "fastest" is not one of round_robin, weighted_round_robin, least_conn, least_request, random, consistent_hash`}},
		{name: "hash_key missing", in: svc("algorithm: consistent_hash\n"), want: []string{"hash_key: required by algorithm consistent_hash"}},
		{name: "hash_key without consistent_hash", in: svc("hash_key: {source: path}\n"), want: []string{"hash_key: only for algorithm consistent_hash, not round_robin"}},
		{name: "hash_key source missing", in: svc("algorithm: consistent_hash\nhash_key: {name: x}\n"), want: []string{"hash_key.source: required (one of header, cookie, source_ip, path)"}},
		{name: "hash_key source unknown", in: svc("algorithm: consistent_hash\nhash_key: {source: query}\n"), want: []string{`hash_key.source: "query" is not one of header, cookie, source_ip, path`}},
		{name: "hash_key header name missing", in: svc("algorithm: consistent_hash\nhash_key: {source: header}\n"), want: []string{"hash_key.name: required for source header"}},
		{name: "hash_key cookie name missing", in: svc("algorithm: consistent_hash\nhash_key: {source: cookie}\n"), want: []string{"hash_key.name: required for source cookie"}},
		{name: "hash_key header name invalid", in: svc("algorithm: consistent_hash\nhash_key: {source: header, name: \"x user\"}\n"), want: []string{`hash_key.name: "x user" is not a valid header name`}},
		{name: "hash_key name with source_ip", in: svc("algorithm: consistent_hash\nhash_key: {source: source_ip, name: x}\n"), want: []string{"hash_key.name: not used with source source_ip"}},
		{name: "hash_key name with path", in: svc("algorithm: consistent_hash\nhash_key: {source: path, name: x}\n"), want: []string{"hash_key.name: not used with source path"}},

		// slow_start, drain_timeout
		{name: "slow_start negative", in: svc("algorithm: random\nslow_start: -1s\n"), want: []string{"slow_start: must not be negative"}},
		{name: "slow_start with consistent_hash", in: svc("algorithm: consistent_hash\nhash_key: {source: path}\nslow_start: 10s\n"), want: []string{"slow_start: not supported by algorithm consistent_hash"}},
		{name: "slow_start with default algorithm", in: svc("slow_start: 10s\n"), want: []string{"slow_start: not supported by algorithm round_robin (the default)"}},
		{name: "drain_timeout negative", in: svc("drain_timeout: -5s\n"), want: []string{"drain_timeout: must not be negative"}},

		// health_check
		{name: "expect_status one number", in: svc("health_check: {expect_status: [200]}\n"), want: []string{"health_check.expect_status: want [low, high]"}},
		{name: "expect_status three numbers", in: svc("health_check: {expect_status: [200, 300, 400]}\n"), want: []string{"health_check.expect_status: want [low, high]"}},
		{name: "expect_status reversed", in: svc("health_check: {expect_status: [399, 200]}\n"), want: []string{"health_check.expect_status: [399, 200] is reversed"}},
		{name: "check timeout too long", in: svc("health_check: {interval: 1s, timeout: 1s}\n"), want: []string{"health_check.timeout: must be less than interval (1s)"}},
		{name: "check type unknown", in: svc("health_check: {type: grpc}\n"), want: []string{`health_check.type: "grpc" is not one of http, tcp`}},
		{name: "check path relative", in: svc("health_check: {path: healthz}\n"), want: []string{`health_check.path: "healthz" must start with /`}},
		{name: "check rise negative", in: svc("health_check: {rise: -1}\n"), want: []string{"health_check.rise: must be at least 1"}},
		{name: "tcp check with path", in: svc("health_check: {type: tcp, path: /x}\n"), want: []string{"health_check.path: only for http checks"}},
		{name: "http check on tcp service", in: svc(tcp + "health_check: {type: http}\n"), want: []string{"health_check.type: a tcp service needs type: tcp, not http"}},
		{name: "default check on tcp service", in: svc(tcp + "health_check: {interval: 3s}\n"), want: []string{"health_check.type: a tcp service needs type: tcp, not http (the default)"}},
		{name: "require_healthy_first without check", in: svc("require_healthy_first: true\n"), want: []string{"require_healthy_first: needs a health_check"}},

		// outlier_detection
		{name: "outlier percent", in: svc("outlier_detection: {max_ejection_percent: 101}\n"), want: []string{"outlier_detection.max_ejection_percent: 101 is not in 1-100"}},
		{name: "outlier times", in: svc("outlier_detection: {base_ejection_time: 1m, max_ejection_time: 30s}\n"), want: []string{"outlier_detection.max_ejection_time: must be at least base_ejection_time (1m0s)"}},
		{name: "outlier negative", in: svc("outlier_detection: {consecutive_5xx: -1}\n"), want: []string{"outlier_detection.consecutive_5xx: must be at least 1"}},

		// panic_threshold
		{name: "panic_threshold too high", in: svc("panic_threshold: 101\n"), want: []string{"panic_threshold: 101 is not in -1..100"}},
		{name: "panic_threshold too low", in: svc("panic_threshold: -2\n"), want: []string{"panic_threshold: -2 is not in -1..100"}},

		// retry
		{name: "retry attempts high", in: svc("retry: {attempts: 11}\n"), want: []string{"retry.attempts: 11 is not in 0-10"}},
		{name: "retry attempts negative", in: svc("retry: {attempts: -1}\n"), want: []string{"retry.attempts: -1 is not in 0-10"}},
		{name: "retry per_try_timeout negative", in: svc("retry: {per_try_timeout: -1s}\n"), want: []string{"retry.per_try_timeout: must not be negative"}},
		{name: "retry budget", in: svc("retry: {budget_percent: 101}\n"), want: []string{"retry.budget_percent: 101 is not in 0-100"}},
		{name: "retry budget negative", in: svc("retry: {budget_percent: -1}\n"), want: []string{"retry.budget_percent: -1 is not in 0-100"}},
		{name: "retry on unknown", in: svc("retry: {on: [5xx, 4xx]}\n"), want: []string{`retry.on[1]: "4xx" is not one of 5xx, timeout`}},
		{name: "retry on twice", in: svc("retry: {on: [timeout, 5xx, timeout]}\n"), want: []string{`retry.on[2]: "timeout" is listed twice (also retry.on[0])`}},
		{name: "per_try_timeout over request", in: svc("retry: {per_try_timeout: 20s}\ntimeouts: {request: 10s}\n"), want: []string{"retry.per_try_timeout: 20s must not exceed timeouts.request (10s)"}},
		{name: "per_try_timeout over default request", in: svc("retry: {per_try_timeout: 45s}\n"), want: []string{"retry.per_try_timeout: 45s must not exceed timeouts.request (30s, the default)"}},

		// timeouts, circuit_breaker
		{name: "timeouts negative", in: svc("timeouts: {connect: -1s, request: -1s, idle: -1s}\n"), want: []string{"timeouts.connect: must not be negative", "timeouts.request: must not be negative", "timeouts.idle: must not be negative"}},
		{name: "circuit_breaker negative", in: svc("circuit_breaker: {max_connections: -1, max_pending: -1, max_requests: -1}\n"), want: []string{"circuit_breaker.max_connections: must not be negative", "circuit_breaker.max_pending: must not be negative", "circuit_breaker.max_requests: must not be negative"}},

		// tcp services
		{name: "tcp retry on", in: svc(tcp + "retry: {on: [5xx]}\n"), want: []string{"retry.on: only for http services"}},
		{name: "tcp hash header", in: svc(tcp + "algorithm: consistent_hash\nhash_key: {source: header, name: x-user}\n"), want: []string{"hash_key.source: header needs an http service"}},
		{name: "tcp hash cookie", in: svc(tcp + "algorithm: consistent_hash\nhash_key: {source: cookie, name: s}\n"), want: []string{"hash_key.source: cookie needs an http service"}},
		{name: "tcp hash path", in: svc(tcp + "algorithm: consistent_hash\nhash_key: {source: path}\n"), want: []string{"hash_key.source: path needs an http service"}},

		// decoding
		{name: "unknown field", in: svc("backend:\n  - address: 10.0.0.2:80\n"), want: []string{`service "web": line 7: backend: unknown field (known fields: algorithm, backend_protocol, backends,`}},
		{name: "misspelt nested field", in: svc("backends:\n  - address: 10.0.0.2:80\n    weigth: 2\n"), want: []string{"line 7: backends[0].weigth: unknown field (known fields: address, drain, labels, weight, zone)"}},
		{name: "wrong type", in: svc("backends:\n  - address: 10.0.0.2:80\n    weight: \"2\"\n"), want: []string{`line 7: backends[0].weight: expected an integer, got "2"`}},
		{name: "bad duration", in: svc("drain_timeout: 5 seconds\n"), want: []string{`line 7: drain_timeout: "5 seconds" is not a duration`}},
		{name: "repeated key", in: svc("algorithm: random\nalgorithm: least_conn\n"), want: []string{"line 8: algorithm: duplicate key (first set on line 7)"}},
		{name: "not a map", in: "- kind: service\n", want: []string{"document 1 (line 1): line 1: the document must be a map of field names to values, got a list"}},
		{name: "syntax error", in: "kind: service\nname: [web\n", want: []string{"document 1: line 1: did not find expected ',' or ']'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; input:\n%s", tc.in)
			}
			if objs != nil {
				t.Errorf("Parse returned %d objects with an error", len(objs))
			}
			msg := err.Error()
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, "document 1") {
					t.Errorf("problem %q does not name document 1", line)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\ndoes not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseMultiDocument(t *testing.T) {
	const in = `kind: service
name: web
routes: [{host: a.com}]
---
# comment
kind: service
name: api
routes:
  - host: "exa mple.com"
backends:
  - address: 10.0.0.1:80
  - address: 10.0.0.1:80
---
kind: service
name: web
routes: [{host: b.com}]
---
kind: service
name: other
routes: [{host: A.com}]
`
	objs, err := Parse([]byte(in))
	if err == nil || objs != nil {
		t.Fatalf("Parse = %v, %v; want no objects and an error", objs, err)
	}
	want := []string{
		`document 2 (line 6): service "api": routes[0].host: "exa mple.com" is not a valid host name`,
		`document 2 (line 6): service "api": backends[1].address: "10.0.0.1:80" is listed twice (also backends[0])`,
		`document 3 (line 14): service "web": name: "web" is already defined in document 1`,
		`document 4 (line 18): service "other": routes: route host "A.com" path_prefix "/" is already used by service "web" in this file`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var de *DocumentError
	if !errors.As(err, &de) || de.Doc != 2 || de.Line != 6 || de.Kind != KindService || de.Name != "api" {
		t.Fatalf("first problem %#v, want document 2 at line 6", de)
	}
	var fe *FieldError
	if !errors.As(de, &fe) || fe.Field != "routes[0].host" {
		t.Errorf("first problem's field error %#v, want routes[0].host", fe)
	}

	// A decoding problem in a later document carries the line in the file.
	_, err = Parse([]byte(svc("") + "---\n" + svc("name: two\nroutes: [{host: b.com}]\nbackends:\n  - address: b:80\n    weigth: 2\n")))
	var dec *config.DecodeError
	if !errors.As(err, &dec) || dec.Line != 13 || dec.Path != "backends[0].weigth" {
		t.Errorf("error %v: want a *config.DecodeError for backends[0].weigth at line 13", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), `document 2 (line 8): service "two": line 13: backends[0].weigth: unknown field`) {
		t.Errorf("error %v does not name document 2", err)
	}

	// A syntax error in document 2 rejects document 1 as well.
	objs, err = Parse([]byte(svc("") + "---\n" + "kind: service\nname: [\n"))
	if err == nil || objs != nil || !strings.HasPrefix(err.Error(), "document 2: line ") {
		t.Errorf("Parse = %v, %v; want a syntax error in document 2", objs, err)
	}
}

func TestParseNoObjects(t *testing.T) {
	for _, in := range []string{"", "\n", "# nothing here\n", "---\n---\n", "---\n# c\n...\n", "~\n"} {
		objs, err := Parse([]byte(in))
		if err == nil || err.Error() != "no objects in file" || objs != nil {
			t.Errorf("Parse(%q) = %v, %v; want no objects in file", in, objs, err)
		}
	}
}

// TestParseTooManyProblems checks that a file full of mistakes yields a
// bounded report.
func TestParseTooManyProblems(t *testing.T) {
	var b strings.Builder
	for range 200 {
		b.WriteString("---\nname: x\n")
	}
	_, err := Parse([]byte(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 || lines[maxProblems] != "too many problems; fix these first" {
		t.Errorf("got %d problems, last %q", len(lines), lines[len(lines)-1])
	}
}

// TestParseGolden checks the whole report for a file with several
// mistakes against testdata/invalid.golden (go test -update rewrites it).
func TestParseGolden(t *testing.T) {
	_, err := Parse(readFile(t, "invalid.yaml"))
	if err == nil {
		t.Fatal("invalid.yaml parsed")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("report:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}
