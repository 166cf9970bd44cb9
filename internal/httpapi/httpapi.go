// Package httpapi serves herd's HTTP API under /v1/: KV and sessions in
// Consul's shapes, status, agent and operator endpoints, metrics, and the
// internal endpoints that followers use to reach the leader. Handlers
// return errors; one function turns them into JSON error responses.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/server"
)

// Limits on KV input.
const (
	MaxKeyBytes   = 1024
	MaxValueBytes = 512 << 10
	maxBodyBytes  = 2 << 20
)

// Gossip is the membership view the API shows.
type Gossip interface {
	Members() []api.Member
}

// Config configures the API handler.
type Config struct {
	// NodeName is this agent's name, the default Node of new sessions.
	NodeName string
	// Server is the local Raft server; nil on client agents, which proxy
	// state requests to a server.
	Server *server.Server
	// Gossip is the membership view.
	Gossip Gossip
	// Self describes this agent for /v1/agent/self.
	Self func() api.AgentSelf
	// Registerer and Gatherer are the agent's metrics registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// UI serves /ui/; nil serves nothing there.
	UI http.Handler
	// EnableDebug serves net/http/pprof at /debug/pprof/.
	EnableDebug bool
	// Logger; nil discards.
	Logger *slog.Logger
	// Gateway reports this agent's gateway view; nil when it runs none.
	Gateway func() []api.GatewayService
	// Logs writes the last tail lines (0: all) of a replica's stream
	// (stdout or stderr) run by this agent to w, then follows it while
	// follow is set; nil when this agent runs no replicas.
	Logs func(ctx context.Context, w io.Writer, id, stream string, tail int, follow bool) error
	// Usage reports what this agent's replicas use; nil when it runs none.
	Usage func() []api.ReplicaUsage
}

// API is the HTTP handler.
type API struct {
	cfg     Config
	logger  *slog.Logger
	mux     *http.ServeMux
	metrics *apiMetrics
	proxy   *httputil.ReverseProxy
	kv      map[string]http.Handler // by method
}

// New builds the handler and registers its metrics.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	a := &API{cfg: cfg, logger: cfg.Logger, mux: http.NewServeMux(), metrics: newAPIMetrics(cfg.Registerer)}
	if cfg.Server == nil {
		a.proxy = a.newServerProxy()
	}
	a.routes()
	return a
}

// handlerFunc is an HTTP handler that returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) handle(pattern string, h handlerFunc) {
	route := pattern
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		route = pattern[i+1:]
	}
	a.mux.Handle(pattern, a.wrap(route, h))
}

// wrap instruments h under the route label and writes its error.
func (a *API) wrap(route string, h handlerFunc) http.Handler {
	return a.instrument(route, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// stateful marks endpoints that need the cluster state: on a client agent
// they are proxied to a server.
func (a *API) stateful(h handlerFunc) handlerFunc {
	if a.cfg.Server != nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if len(a.liveServers()) == 0 {
			return errorf(http.StatusServiceUnavailable, "this client agent knows no live server: is it joined to a cluster?")
		}
		a.proxy.ServeHTTP(w, r)
		return nil
	}
}

func (a *API) routes() {
	// KV paths bypass the mux, whose path cleaning would turn the key
	// "a/../b" into "b" (and "." into the whole store) with a redirect.
	a.kv = map[string]http.Handler{
		http.MethodGet:    a.wrap("/v1/kv/{key...}", a.stateful(a.kvGet)),
		http.MethodPut:    a.wrap("/v1/kv/{key...}", a.stateful(a.kvPut)),
		http.MethodPost:   a.wrap("/v1/kv/{key...}", a.stateful(a.kvPut)),
		http.MethodDelete: a.wrap("/v1/kv/{key...}", a.stateful(a.kvDelete)),
	}

	a.handle("PUT /v1/session/create", a.stateful(a.sessionCreate))
	a.handle("PUT /v1/session/destroy/{id}", a.stateful(a.sessionDestroy))
	a.handle("PUT /v1/session/renew/{id}", a.stateful(a.sessionRenew))
	a.handle("GET /v1/session/info/{id}", a.stateful(a.sessionInfo))
	a.handle("GET /v1/session/list", a.stateful(a.sessionList))
	a.handle("GET /v1/session/node/{node}", a.stateful(a.sessionList))

	a.handle("GET /v1/status/leader", a.stateful(a.statusLeader))
	a.handle("GET /v1/status/peers", a.stateful(a.statusPeers))
	a.handle("GET /v1/status/health", a.statusHealth)
	a.handle("GET /v1/operator/raft/configuration", a.stateful(a.raftConfiguration))
	a.handle("GET /v1/state/members", a.stateful(a.stateMembers))

	a.handle("GET /v1/services", a.stateful(a.serviceList))
	a.handle("GET /v1/service/{name}", a.stateful(a.serviceGet))
	a.handle("PUT /v1/service/{name}", a.stateful(a.servicePut))
	a.handle("DELETE /v1/service/{name}", a.stateful(a.serviceDelete))
	a.handle("PUT /v1/service/{name}/drain", a.stateful(a.serviceDrain(true)))
	a.handle("PUT /v1/service/{name}/enable", a.stateful(a.serviceDrain(false)))

	a.handle("GET /v1/gateway/services", a.gatewayServices)

	a.handle("GET /v1/replicas", a.stateful(a.replicaList))
	a.handle("GET /v1/nodes", a.stateful(a.nodeList))
	a.handle("GET /v1/node/{name}", a.stateful(a.nodeGet))
	a.handle("PUT /v1/node/{name}/register", a.stateful(a.nodeRegister))
	a.handle("PUT /v1/node/{name}/replicas", a.stateful(a.nodeReport))
	a.handle("PUT /v1/node/{name}/eligibility", a.stateful(a.nodeFlag(false)))
	a.handle("PUT /v1/node/{name}/drain", a.stateful(a.nodeFlag(true)))
	a.handle("GET /v1/agent/replica/{id}/logs", a.replicaLogs)
	a.handle("GET /v1/agent/replicas", func(w http.ResponseWriter, r *http.Request) error {
		out := []api.ReplicaUsage{}
		if a.cfg.Usage != nil {
			out = a.cfg.Usage()
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})

	a.handle("GET /v1/agent/self", a.agentSelf)
	a.handle("GET /v1/agent/members", a.agentMembers)

	a.handle("POST "+server.PathApplyBatch, a.internalApplyBatch)
	a.handle("GET "+server.PathReadIndex, a.internalReadIndex)

	var gatherer prometheus.Gatherer = prometheus.NewRegistry()
	if a.cfg.Gatherer != nil {
		gatherer = a.cfg.Gatherer
	}
	metricsH := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	a.handle("GET /v1/metrics", func(w http.ResponseWriter, r *http.Request) error {
		metricsH.ServeHTTP(w, r)
		return nil
	})
	if a.cfg.EnableDebug {
		a.mux.HandleFunc("/debug/pprof/", pprof.Index)
		a.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if a.cfg.UI != nil {
		a.mux.Handle("/ui/", a.cfg.UI)
		a.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect))
	}
	a.handle("/", func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// ServeHTTP implements http.Handler. A panic in any handler is logged with
// its stack and answered with 500; the agent keeps running.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.logger.Error("panic in HTTP handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			a.writeError(w, r, errorf(http.StatusInternalServerError, "internal error"))
		}
	}()
	if key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/"); ok {
		h, found := a.kv[r.Method]
		if !found {
			w.Header().Set("Allow", "GET, PUT, POST, DELETE")
			a.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed on /v1/kv/", r.Method))
			return
		}
		r.SetPathValue("key", key)
		h.ServeHTTP(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// httpError is an error with an HTTP status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError is the one place errors become responses.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, server.ErrNotLeader):
		code = server.StatusNotLeader
	case errors.Is(err, server.ErrNoLeader), errors.Is(err, server.ErrUnknownOutcome):
		code = http.StatusServiceUnavailable
	case r.Context().Err() != nil:
		code = http.StatusServiceUnavailable
	}
	if code >= 500 {
		a.logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeJSON(w, code, api.Error{Error: err.Error(), Status: code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errEmptyBody is returned by decodeJSON for a request without a body.
var errEmptyBody = errorf(http.StatusBadRequest, "missing JSON body")

// decodeJSON reads a JSON body strictly into v, naming the problem.
func decodeJSON(r *http.Request, v any) error {
	return decodeJSONLimit(r, v, maxBodyBytes)
}

// decodeJSONLimit is decodeJSON with a body size limit.
func decodeJSONLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmptyBody
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &se):
			return errorf(http.StatusBadRequest, "malformed JSON body at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "malformed JSON body: field %q must be %s, not %s", te.Field, te.Type, te.Value)
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
		default:
			return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
		}
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed JSON body: more than one JSON value")
	}
	return nil
}

// newServerProxy forwards requests from a client agent to a random live
// server.
func (a *API) newServerProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			servers := a.liveServers()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "127.0.0.1:1" // refused at once if the server vanished meanwhile
			if len(servers) > 0 {
				pr.Out.URL.Host = servers[rand.IntN(len(servers))]
			}
			pr.Out.Header.Set(headerOriginNode, a.cfg.NodeName)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.writeError(w, r, errorf(http.StatusServiceUnavailable, "no server reachable from this client agent: %v", err))
		},
		FlushInterval: -1,
	}
}

// liveServers lists the API addresses of the servers gossip sees alive.
func (a *API) liveServers() []string {
	var servers []string
	for _, m := range a.cfg.Gossip.Members() {
		if m.Role == "server" && m.Status == api.MemberAlive && m.APIAddr != "" {
			servers = append(servers, m.APIAddr)
		}
	}
	return servers
}

// headerOriginNode carries the client agent's name through its proxy, so
// sessions created there belong to that node.
const headerOriginNode = "X-Herd-Origin-Node"

func parseUint(r *http.Request, name string) (uint64, bool, error) {
	v := r.URL.Query().Get(name)
	if !r.URL.Query().Has(name) {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, true, errorf(http.StatusBadRequest, "query parameter %s=%q is not a non-negative integer", name, v)
	}
	return n, true, nil
}

func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil // Consul: a bare number is seconds
	}
	return time.ParseDuration(v)
}

// gatewayServices reports how this agent's gateway runs each service.
func (a *API) gatewayServices(w http.ResponseWriter, r *http.Request) error {
	var out []api.GatewayService
	if a.cfg.Gateway != nil {
		out = a.cfg.Gateway()
	}
	if out == nil {
		return errorf(http.StatusNotFound, "this agent runs no gateway")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
