package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("250ms",
// "1m30s") in JSON and YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a number with a unit, e.g. 500ms, 5s, 1m)", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for other types
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"5s\", got %s", b)
	}
	return d.UnmarshalText([]byte(s))
}

// Service is a load-balanced service: where its traffic comes from
// (routes), where it goes (backends), and how (balancing, health,
// resilience). It is written as YAML with `kind: service` and applied with
// `herd apply -f`, or PUT to /v1/service/NAME as JSON. Field names are the
// same in both.
type Service struct {
	// Kind is "service" in YAML files; it may be omitted in the API.
	Kind string `json:"kind,omitempty" yaml:"kind"`
	// Name identifies the service: lower-case letters, digits and '-'.
	Name string `json:"name" yaml:"name"`
	// Protocol is "http" (the default) or "tcp". HTTP services are routed
	// by host and path; TCP services by listener port.
	Protocol string `json:"protocol,omitempty" yaml:"protocol"`
	// BackendProtocol is how the gateway speaks to the backends of an
	// HTTP service: "http1" (the default; HTTP/1.1) or "h2c" (HTTP/2
	// without TLS, as gRPC servers do). An h2c service is reachable from
	// HTTP/2 clients only (TLS with ALPN h2, or h2c prior knowledge).
	BackendProtocol string `json:"backend_protocol,omitempty" yaml:"backend_protocol"`
	// Routes say which traffic reaches the service.
	Routes []Route `json:"routes,omitempty" yaml:"routes"`
	// Backends are the servers that receive it.
	Backends []Backend `json:"backends,omitempty" yaml:"backends"`
	// Algorithm is the balancing algorithm: round_robin (default),
	// weighted_round_robin, least_conn, least_request, random or
	// consistent_hash.
	Algorithm string `json:"algorithm,omitempty" yaml:"algorithm"`
	// HashKey says what consistent_hash hashes.
	HashKey *HashKey `json:"hash_key,omitempty" yaml:"hash_key"`
	// ZoneAware keeps traffic in the gateway's own zone while it has
	// enough healthy capacity there.
	ZoneAware bool `json:"zone_aware,omitempty" yaml:"zone_aware"`
	// SlowStart ramps a newly healthy backend's weight up over this long.
	SlowStart Duration `json:"slow_start,omitempty" yaml:"slow_start"`
	// HealthCheck is the active health check; none means backends are
	// healthy unless passive outlier detection ejects them.
	HealthCheck *HealthCheck `json:"health_check,omitempty" yaml:"health_check"`
	// RequireHealthyFirst keeps a new backend out of rotation until its
	// health check has passed; by default new backends take traffic at
	// once and the first check runs immediately.
	RequireHealthyFirst bool `json:"require_healthy_first,omitempty" yaml:"require_healthy_first"`
	// OutlierDetection is the passive check: backends that fail requests
	// are ejected for a while. It is on, with its defaults, when omitted;
	// disabled: true turns it off.
	OutlierDetection *OutlierDetection `json:"outlier_detection,omitempty" yaml:"outlier_detection"`
	// PanicThreshold (percent, default 50): when fewer backends than this
	// are healthy, traffic goes to all of them rather than overloading
	// the few. 0 means the default; -1 turns panic mode off.
	PanicThreshold int `json:"panic_threshold,omitempty" yaml:"panic_threshold"`
	// Retry is the retry policy.
	Retry *Retry `json:"retry,omitempty" yaml:"retry"`
	// Timeouts bound connecting, each request and idle connections.
	Timeouts *Timeouts `json:"timeouts,omitempty" yaml:"timeouts"`
	// CircuitBreaker limits what one gateway sends to one backend.
	CircuitBreaker *CircuitBreaker `json:"circuit_breaker,omitempty" yaml:"circuit_breaker"`
	// DrainTimeout is how long in-flight requests to a removed backend may
	// take to finish (default 30s).
	DrainTimeout Duration `json:"drain_timeout,omitempty" yaml:"drain_timeout"`
	// Run makes herd run the service's replicas itself; their running,
	// healthy replicas become its backends. Nil for a service of static
	// backends only.
	Run *Run `json:"run,omitempty" yaml:"run"`
}

// Route matches traffic for a service. An HTTP route has a Host, a
// PathPrefix or both; a TCP route has a Port.
type Route struct {
	// Host is an exact host name or "*.example.com" (any subdomain);
	// empty matches any host.
	Host string `json:"host,omitempty" yaml:"host"`
	// PathPrefix matches paths that start with it on a segment boundary
	// ("/api" matches /api and /api/x, not /apix); default "/".
	PathPrefix string `json:"path_prefix,omitempty" yaml:"path_prefix"`
	// Port is a TCP route's listener port, one of the gateway's TCP ports.
	Port int `json:"port,omitempty" yaml:"port"`
}

// Backend is one server of a service.
type Backend struct {
	// Address is host:port.
	Address string `json:"address" yaml:"address"`
	// Weight is the backend's share for the weighted algorithms
	// (weighted_round_robin, least_conn, least_request, random,
	// consistent_hash; round_robin ignores it). Default 1.
	Weight int `json:"weight,omitempty" yaml:"weight"`
	// Zone is the backend's failure zone, for zone-aware balancing.
	Zone string `json:"zone,omitempty" yaml:"zone"`
	// Labels are free-form key/value pairs.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels"`
	// Drain takes the backend out of rotation (herd backend drain): no
	// new requests; requests in flight finish.
	Drain bool `json:"drain,omitempty" yaml:"drain"`
}

// HashKey names the request property consistent hashing uses.
type HashKey struct {
	// Source is header, cookie, source_ip or path.
	Source string `json:"source" yaml:"source"`
	// Name is the header or cookie name.
	Name string `json:"name,omitempty" yaml:"name"`
}

// HealthCheck is an active health check.
type HealthCheck struct {
	// Type is http (default) or tcp; tcp services must use tcp.
	Type string `json:"type,omitempty" yaml:"type"`
	// Path is the HTTP path to GET (default "/").
	Path string `json:"path,omitempty" yaml:"path"`
	// Host is the Host header to send.
	Host string `json:"host,omitempty" yaml:"host"`
	// ExpectStatus is the inclusive range of good statuses, e.g.
	// [200, 399] (the default).
	ExpectStatus []int `json:"expect_status,omitempty" yaml:"expect_status"`
	// BodyMatch, when set, must occur in the response body.
	BodyMatch string `json:"body_match,omitempty" yaml:"body_match"`
	// Interval between checks (default 5s), Timeout of one check
	// (default 2s), and Jitter, a random extra delay up to this long.
	Interval Duration `json:"interval,omitempty" yaml:"interval"`
	Timeout  Duration `json:"timeout,omitempty" yaml:"timeout"`
	Jitter   Duration `json:"jitter,omitempty" yaml:"jitter"`
	// Rise consecutive passes make a backend healthy (default 2); Fall
	// consecutive failures make it unhealthy (default 3).
	Rise int `json:"rise,omitempty" yaml:"rise"`
	Fall int `json:"fall,omitempty" yaml:"fall"`
}

// OutlierDetection ejects backends that fail requests.
type OutlierDetection struct {
	// Consecutive5xx responses eject a backend (default 5).
	Consecutive5xx int `json:"consecutive_5xx,omitempty" yaml:"consecutive_5xx"`
	// ConsecutiveConnectFailure connection failures eject it (default 3).
	ConsecutiveConnectFailure int `json:"consecutive_connect_failure,omitempty" yaml:"consecutive_connect_failure"`
	// BaseEjectionTime times the number of ejections is how long an
	// ejection lasts (default 30s), up to MaxEjectionTime (default 300s).
	BaseEjectionTime Duration `json:"base_ejection_time,omitempty" yaml:"base_ejection_time"`
	MaxEjectionTime  Duration `json:"max_ejection_time,omitempty" yaml:"max_ejection_time"`
	// MaxEjectionPercent of the backends may be ejected at once (default 50).
	MaxEjectionPercent int `json:"max_ejection_percent,omitempty" yaml:"max_ejection_percent"`
	// Disabled turns passive ejection off.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled"`
}

// Retry is a service's retry policy. Connection failures are always
// retried (nothing was sent); 5xx answers and timeouts only for
// idempotent methods or when the request body was not sent yet. Each try
// goes to a different backend when there is one.
type Retry struct {
	// Attempts is the most tries per request, the first included
	// (default 3; 1 turns retries off).
	Attempts int `json:"attempts,omitempty" yaml:"attempts"`
	// PerTryTimeout bounds one try's wait for the response header
	// (default: the request timeout).
	PerTryTimeout Duration `json:"per_try_timeout,omitempty" yaml:"per_try_timeout"`
	// BudgetPercent caps retries at this percent of the requests (default
	// 20), so that retries cannot multiply the load on a struggling
	// service.
	BudgetPercent int `json:"budget_percent,omitempty" yaml:"budget_percent"`
	// On lists what is retried besides connection failures: 5xx and
	// timeout (default both).
	On []string `json:"on,omitempty" yaml:"on"`
}

// Timeouts bound a service's traffic.
type Timeouts struct {
	// Connect bounds dialling a backend (default 2s).
	Connect Duration `json:"connect,omitempty" yaml:"connect"`
	// Request bounds a whole request until its response header arrives,
	// retries included (default 30s).
	Request Duration `json:"request,omitempty" yaml:"request"`
	// Idle closes idle backend connections after this long (default 60s).
	Idle Duration `json:"idle,omitempty" yaml:"idle"`
}

// CircuitBreaker limits what one gateway sends to one backend; requests
// over a limit fail fast and are retried on another backend.
type CircuitBreaker struct {
	// MaxConnections open to the backend (default 1024).
	MaxConnections int `json:"max_connections,omitempty" yaml:"max_connections"`
	// MaxPending requests waiting for a connection (default 128).
	MaxPending int `json:"max_pending,omitempty" yaml:"max_pending"`
	// MaxRequests in flight to the backend (default 1024).
	MaxRequests int `json:"max_requests,omitempty" yaml:"max_requests"`
}

// ServiceEntry is a stored service with its Raft indexes.
type ServiceEntry struct {
	Service
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// RunVersion is the index at which the run section last changed in a
	// way that needs new replicas (0 for a service without one).
	RunVersion uint64 `json:"run_version,omitempty"`
	// Rollout is the state of the latest rollout of the run section.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Rollout states.
const (
	RolloutProgress = "progress"
	RolloutComplete = "complete"
	RolloutFailed   = "failed"
	RolloutReverted = "reverted"
)

// Rollout is how the change to a service's RunVersion is going. A rollout
// that fails with auto_revert is reverted at once: the service's run
// section and RunVersion go back to StableRun and StableVersion (the
// replicas of that version that still run are kept), with a rollout that
// says RevertedFrom.
type Rollout struct {
	// Version is the RunVersion being rolled out.
	Version uint64 `json:"version"`
	// State is progress, complete, failed or reverted.
	State string `json:"state"`
	// Message says why it failed (for a reverting rollout: why the version
	// it reverts from failed), or what it waits for.
	Message string `json:"message,omitempty"`
	// StableVersion and StableRun are the last version that completed,
	// kept to revert to.
	StableVersion uint64 `json:"stable_version,omitempty"`
	StableRun     *Run   `json:"stable_run,omitempty"`
	// RevertedFrom is the version whose failed rollout this one reverts
	// (0 if none).
	RevertedFrom uint64    `json:"reverted_from,omitempty"`
	Since        time.Time `json:"since,omitzero"`
}

// BackendStatus is one backend as one gateway sees it.
type BackendStatus struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	Zone    string `json:"zone,omitempty"`
	// Health is healthy, unhealthy, ejected or draining.
	Health string `json:"health"`
	// Healthy is the active check's verdict; Ejected the passive one's.
	Healthy      bool      `json:"healthy"`
	Ejected      bool      `json:"ejected"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	Ejections    int       `json:"ejections,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	// InFlight requests now; Requests served since the gateway started;
	// RatePerSecond over the last few seconds.
	InFlight      int64   `json:"in_flight"`
	Requests      uint64  `json:"requests"`
	RatePerSecond float64 `json:"rate_per_second"`
}

// GatewayService is a service as this agent's gateway runs it.
type GatewayService struct {
	Name string `json:"name"`
	// Panic is true when too few backends are healthy and traffic goes
	// to all of them.
	Panic    bool            `json:"panic"`
	Backends []BackendStatus `json:"backends"`
}
