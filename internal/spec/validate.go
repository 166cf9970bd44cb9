package spec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/balance"
	"github.com/herd-cluster/herd/internal/health"
)

// KindService is the kind of a service object.
const KindService = "service"

// kinds lists the kinds an apply file may hold, for error messages.
var kinds = []string{KindService, KindVIP}

// Protocols of a service.
const (
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// Backend protocols of an HTTP service.
const (
	BackendHTTP1 = "http1"
	BackendH2C   = "h2c"
)

// Hash key sources of consistent_hash.
const (
	HashHeader   = "header"
	HashCookie   = "cookie"
	HashSourceIP = "source_ip"
	HashPath     = "path"
)

// Conditions retry.on may list.
const (
	Retry5xx     = "5xx"
	RetryTimeout = "timeout"
)

// Limits of the values of a service.
const (
	maxNameLen       = 63
	maxHostLen       = 253
	maxDNSLabelLen   = 63
	maxPathPrefixLen = 1024
	maxLabelKeyLen   = 63
)

// MaxAttempts is the most tries per request retry.attempts may ask for.
const MaxAttempts = 10

// FieldError is one problem with one field of an object.
type FieldError struct {
	// Field is the path of the field as users write it in YAML and JSON,
	// such as "routes[0].host"; empty for a problem with the object as a
	// whole.
	Field string
	// Msg describes the problem.
	Msg string
}

// Error returns "field: msg", or just msg when Field is empty.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// validator collects the problems of one object in field order.
type validator struct {
	errs []error
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addFieldErrors adds the problems of err, a joined list of errors of the
// form "field: msg" as package health's Validate methods return.
func (v *validator) addFieldErrors(err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		field, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			field, msg = "", e.Error()
		}
		v.errs = append(v.errs, &FieldError{Field: field, Msg: msg})
	}
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// ValidateService checks one service and returns every problem it finds,
// each a *FieldError naming the field by its YAML and JSON path, joined by
// errors.Join in field order; nil when s is valid. Kind may be empty (the
// JSON API allows it) or "service". It checks s alone: RoutesConflict
// checks s against the other services.
//
// Host names in routes may be written in any case and are compared case
// insensitively.
func ValidateService(s *api.Service) error {
	if s == nil {
		return &FieldError{Msg: "no service"}
	}
	v := &validator{}
	switch {
	case s.Name == "":
		v.add("name", "required")
	case !validName(s.Name):
		v.add("name", "%q must be 1-%d lower-case letters, digits and '-', starting and ending with a letter or digit", s.Name, maxNameLen)
	}
	if s.Kind != "" && s.Kind != KindService {
		v.add("kind", "%q is not a known kind (want one of: %s)", s.Kind, strings.Join(kinds, ", "))
	}
	proto := s.Protocol
	switch proto {
	case "":
		proto = ProtocolHTTP
	case ProtocolHTTP, ProtocolTCP:
	default:
		v.add("protocol", "%q is not one of http, tcp", s.Protocol)
	}
	tcp := proto == ProtocolTCP
	switch s.BackendProtocol {
	case "", BackendHTTP1:
	case BackendH2C:
		if tcp {
			v.add("backend_protocol", "%q is for http services only", s.BackendProtocol)
		}
	default:
		v.add("backend_protocol", "%q is not one of http1, h2c", s.BackendProtocol)
	}

	if len(s.Routes) > 0 || s.Run == nil {
		// A service that herd runs may have no route (a worker).
		v.routes(s.Routes, tcp)
	}
	v.backends(s.Backends)
	v.run(s.Run, s)

	alg := balance.Algorithm(s.Algorithm)
	if alg == "" {
		alg = balance.RoundRobin
	}
	if !alg.Valid() {
		v.add("algorithm", "%q is not one of %s", s.Algorithm, algorithmList())
	}
	v.hashKey(s.HashKey, alg, tcp)
	switch {
	case s.SlowStart < 0:
		v.add("slow_start", "must not be negative")
	case s.SlowStart > 0 && (alg == balance.ConsistentHash || alg == balance.RoundRobin):
		// Package balance ignores slow start for these two; say so
		// rather than accept a setting that does nothing.
		def := ""
		if s.Algorithm == "" {
			def = " (the default)"
		}
		v.add("slow_start", "not supported by algorithm %s%s; use one of weighted_round_robin, least_conn, least_request, random", alg, def)
	}
	if s.DrainTimeout < 0 {
		v.add("drain_timeout", "must not be negative")
	}

	v.healthCheck(s.HealthCheck, tcp)
	if s.RequireHealthyFirst && s.HealthCheck == nil {
		v.add("require_healthy_first", "needs a health_check: without one a new backend would never take traffic")
	}
	if s.OutlierDetection != nil {
		v.addFieldErrors(OutlierSpec(s.OutlierDetection).Validate())
	}
	if s.PanicThreshold < -1 || s.PanicThreshold > 100 {
		v.add("panic_threshold", "%d is not in -1..100 (percent; -1 turns panic mode off)", s.PanicThreshold)
	}
	v.retry(s.Retry, s.Timeouts, tcp)
	if t := s.Timeouts; t != nil {
		for _, d := range []struct {
			field string
			d     api.Duration
		}{{"connect", t.Connect}, {"request", t.Request}, {"idle", t.Idle}} {
			if d.d < 0 {
				v.add("timeouts."+d.field, "must not be negative")
			}
		}
	}
	if cb := s.CircuitBreaker; cb != nil {
		for _, n := range []struct {
			field string
			n     int
		}{{"max_connections", cb.MaxConnections}, {"max_pending", cb.MaxPending}, {"max_requests", cb.MaxRequests}} {
			if n.n < 0 {
				v.add("circuit_breaker."+n.field, "must not be negative")
			}
		}
	}
	return v.err()
}

// validName reports whether name is a valid service name.
func validName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := range len(name) {
		if c := name[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

func algorithmList() string {
	algs := balance.Algorithms()
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// routeKey identifies what a route matches, for finding duplicates and
// conflicts: host names compare case-insensitively and an empty path prefix
// is "/".
type routeKey struct {
	tcp  bool
	host string
	path string
	port int
}

func keyOf(r api.Route, tcp bool) routeKey {
	if tcp {
		return routeKey{tcp: true, port: r.Port}
	}
	path := r.PathPrefix
	if path == "" {
		path = "/"
	}
	return routeKey{host: strings.ToLower(r.Host), path: path}
}

func (v *validator) routes(routes []api.Route, tcp bool) {
	if len(routes) == 0 {
		v.add("routes", "at least one route is required")
		return
	}
	seen := make(map[routeKey]int, len(routes))
	for i, r := range routes {
		field := fmt.Sprintf("routes[%d]", i)
		n := len(v.errs)
		if tcp {
			if r.Port < 1 || r.Port > 65535 {
				v.add(field+".port", "%d is not a port (1-65535); a tcp route needs the gateway port it listens on", r.Port)
			}
			if r.Host != "" {
				v.add(field+".host", "only for http services (a tcp route matches by port)")
			}
			if r.PathPrefix != "" {
				v.add(field+".path_prefix", "only for http services (a tcp route matches by port)")
			}
		} else {
			if msg := hostProblem(r.Host); msg != "" {
				v.add(field+".host", "%s", msg)
			}
			if msg := pathPrefixProblem(r.PathPrefix); msg != "" {
				v.add(field+".path_prefix", "%s", msg)
			}
			if r.Port != 0 {
				v.add(field+".port", "only for tcp services (http routes match by host and path_prefix)")
			}
		}
		if len(v.errs) > n {
			continue
		}
		k := keyOf(r, tcp)
		if j, dup := seen[k]; dup {
			v.add(field, "same as routes[%d]", j)
			continue
		}
		seen[k] = i
	}
}

// hostProblem says what is wrong with the route host h, or "" if nothing.
// Valid hosts are empty (any host), a DNS name in any case, or "*." and a
// DNS name (any subdomain of it).
func hostProblem(h string) string {
	if h == "" {
		return ""
	}
	name, wildcard := strings.CutPrefix(h, "*.")
	if len(h) <= maxHostLen && validDNSName(name) {
		return ""
	}
	msg := fmt.Sprintf("%q is not a valid host name", h)
	switch {
	case len(h) > maxHostLen:
		return fmt.Sprintf("%s: longer than %d bytes", msg, maxHostLen)
	case !wildcard && strings.Contains(h, "*"), wildcard && strings.Contains(name, "*"):
		return msg + `: a wildcard must be the whole first label, as in "*.example.com"`
	case strings.Contains(h, ":"):
		return msg + ": remove the port (routes match every gateway port)"
	case strings.Contains(h, "/"):
		return msg + ": put the path in path_prefix"
	}
	return msg
}

// validDNSName reports whether s is a DNS host name: dot-separated labels
// of 1-63 letters, digits and '-', not starting or ending with '-'.
func validDNSName(s string) bool {
	if s == "" || len(s) > maxHostLen {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > maxDNSLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := range len(label) {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// pathPrefixProblem says what is wrong with a route's path prefix, or "".
func pathPrefixProblem(p string) string {
	switch {
	case p == "":
		return ""
	case len(p) > maxPathPrefixLen:
		return fmt.Sprintf("longer than %d bytes", maxPathPrefixLen)
	case p[0] != '/':
		return fmt.Sprintf("%q must start with /", p)
	case !utf8.ValidString(p):
		return fmt.Sprintf("%q is not valid UTF-8", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Sprintf("%q must not contain ? or # (it matches the path only)", p)
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Sprintf("%q must not contain whitespace or control characters", p)
	}
	return ""
}

func (v *validator) backends(backends []api.Backend) {
	seen := make(map[string]int, len(backends))
	for i, b := range backends {
		field := fmt.Sprintf("backends[%d]", i)
		if key, msg := backendAddress(b.Address); msg != "" {
			v.add(field+".address", "%s", msg)
		} else if j, dup := seen[key]; dup {
			v.add(field+".address", "%q is listed twice (also backends[%d])", b.Address, j)
		} else {
			seen[key] = i
		}
		switch {
		case b.Weight < 0:
			v.add(field+".weight", "must not be negative")
		case b.Weight > balance.MaxWeight:
			v.add(field+".weight", "%d is more than the maximum %d", b.Weight, balance.MaxWeight)
		}
		keys := make([]string, 0, len(b.Labels))
		for k := range b.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch {
			case k == "":
				v.add(field+".labels", "a label key is empty")
			case len(k) > maxLabelKeyLen:
				v.add(field+".labels", "key %q is longer than %d bytes", k, maxLabelKeyLen)
			case !utf8.ValidString(k):
				v.add(field+".labels", "key %q is not valid UTF-8", k)
			}
		}
	}
}

// backendAddress checks a backend address, host:port. It returns the
// address in a canonical form (lower-case host, canonical IP address,
// decimal port) to find duplicates, or a description of the problem.
func backendAddress(addr string) (key, problem string) {
	if addr == "" {
		return "", "required (host:port)"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Sprintf("%q is not host:port", addr)
	}
	if host == "" {
		return "", fmt.Sprintf("%q has no host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || port[0] < '0' || port[0] > '9' || n < 1 || n > 65535 {
		return "", fmt.Sprintf("%q: port %q is not a number 1-65535", addr, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else if !validBackendHost(host) {
		return "", fmt.Sprintf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n)), ""
}

// validBackendHost reports whether h is a host name a backend may have:
// labels of letters, digits, '-' and '_' (which some service discovery
// systems use), optionally ending in a dot.
func validBackendHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > maxHostLen {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > maxDNSLabelLen {
			return false
		}
		for i := range len(label) {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func (v *validator) hashKey(k *api.HashKey, alg balance.Algorithm, tcp bool) {
	switch {
	case alg == balance.ConsistentHash && k == nil:
		v.add("hash_key", "required by algorithm consistent_hash")
		return
	case alg != balance.ConsistentHash && k != nil:
		if alg.Valid() {
			v.add("hash_key", "only for algorithm consistent_hash, not %s", alg)
		}
		return
	case k == nil:
		return
	}
	const sources = "header, cookie, source_ip, path"
	switch k.Source {
	case HashHeader, HashCookie:
		switch {
		case k.Name == "":
			v.add("hash_key.name", "required for source %s", k.Source)
		case !validToken(k.Name):
			v.add("hash_key.name", "%q is not a valid %s name", k.Name, k.Source)
		}
	case HashSourceIP, HashPath:
		if k.Name != "" {
			v.add("hash_key.name", "not used with source %s", k.Source)
		}
	case "":
		v.add("hash_key.source", "required (one of %s)", sources)
		return
	default:
		v.add("hash_key.source", "%q is not one of %s", k.Source, sources)
		return
	}
	if tcp && k.Source != HashSourceIP {
		v.add("hash_key.source", "%s needs an http service; a tcp service can only hash on source_ip", k.Source)
	}
}

// validToken reports whether s is an HTTP token (RFC 9110), the syntax of
// header and cookie names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func (v *validator) healthCheck(h *api.HealthCheck, tcp bool) {
	if h == nil {
		return
	}
	if n := len(h.ExpectStatus); n != 0 && n != 2 {
		v.add("health_check.expect_status", "want [low, high], got %d numbers", n)
	}
	if tcp && (h.Type == "" || h.Type == health.CheckHTTP) {
		typ := h.Type
		if typ == "" {
			typ = "http (the default)"
		}
		v.add("health_check.type", "a tcp service needs type: tcp, not %s; http checks are only for http services", typ)
	}
	v.addFieldErrors(CheckSpec(h).Validate())
}

func (v *validator) retry(r *api.Retry, t *api.Timeouts, tcp bool) {
	if r == nil {
		return
	}
	if r.Attempts < 0 || r.Attempts > MaxAttempts {
		v.add("retry.attempts", "%d is not in 0-%d (0 means the default, %d; 1 turns retries off)", r.Attempts, MaxAttempts, defaultAttempts)
	}
	if r.PerTryTimeout < 0 {
		v.add("retry.per_try_timeout", "must not be negative")
	} else if r.PerTryTimeout > 0 {
		// Compare with the request timeout the gateway will use, so that
		// a service stays valid once Defaults fills the timeouts in.
		request, def := defaultRequestTimeout, ", the default"
		if t != nil && t.Request > 0 {
			request, def = t.Request.D(), ""
		}
		if r.PerTryTimeout.D() > request {
			v.add("retry.per_try_timeout", "%s must not exceed timeouts.request (%s%s)", r.PerTryTimeout, request, def)
		}
	}
	if r.BudgetPercent < 0 || r.BudgetPercent > 100 {
		v.add("retry.budget_percent", "%d is not in 0-100", r.BudgetPercent)
	}
	if tcp && len(r.On) > 0 {
		v.add("retry.on", "only for http services (a tcp connection is retried only when connecting fails)")
		return
	}
	seen := make(map[string]int, len(r.On))
	for i, on := range r.On {
		field := fmt.Sprintf("retry.on[%d]", i)
		if on != Retry5xx && on != RetryTimeout {
			v.add(field, "%q is not one of %s, %s", on, Retry5xx, RetryTimeout)
			continue
		}
		if j, dup := seen[on]; dup {
			v.add(field, "%q is listed twice (also retry.on[%d])", on, j)
			continue
		}
		seen[on] = i
	}
}
