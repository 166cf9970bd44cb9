// Package httpapi serves herd's HTTP API under /v1/: KV and sessions in
// Consul's shapes, status, agent and operator endpoints, metrics, and the
// internal endpoints that followers use to reach the leader. Handlers
// return errors; one function turns them into JSON error responses.
package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/state"
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
	// Secure turns on authentication and ACLs: callers need a token, or
	// a node certificate of the cluster.
	Secure bool
	// ClientTLS is how this agent reaches servers (its node certificate);
	// nil with security off.
	ClientTLS *tls.Config
	// Audit receives one record per write and per refused request; nil
	// logs none.
	Audit *slog.Logger
	// Monitor streams this agent's logs at /v1/agent/monitor; nil serves
	// none.
	Monitor *logging.Monitor
}

// API is the HTTP handler.
type API struct {
	cfg     Config
	logger  *slog.Logger
	mux     *http.ServeMux
	metrics *apiMetrics
	proxy   *httputil.ReverseProxy
	kv      map[string]http.Handler // by method
	tokens  tokenCache

	// quit ends with Close: blocking queries then answer at once and
	// streams end, so that a graceful shutdown does not wait for them.
	quit context.Context
	// Close ends the blocking queries and streams in progress and any
	// that start later; register it with http.Server.RegisterOnShutdown.
	Close context.CancelFunc
}

// untilQuit is ctx, also cancelled when the API is closed.
func (a *API) untilQuit(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(a.quit, cancel)
	return ctx, func() { stop(); cancel() }
}

// longLived reports whether r waits for changes (a blocking query or a
// stream), which a shutdown should end rather than wait for.
func longLived(r *http.Request) bool {
	q := r.URL.Query()
	return (q.Has("index") && q.Get("index") != "0") || q.Has("follow") || r.URL.Path == "/v1/agent/monitor"
}

// New builds the handler and registers its metrics.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	a := &API{cfg: cfg, logger: cfg.Logger, mux: http.NewServeMux(), metrics: newAPIMetrics(cfg.Registerer)}
	a.quit, a.Close = context.WithCancel(context.Background())
	if cfg.Server == nil {
		a.proxy = a.newServerProxy()
	}
	a.routes()
	return a
}

// handlerFunc is an HTTP handler that returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle serves pattern on this agent, for the identities g admits.
func (a *API) handle(pattern string, g guard, h handlerFunc) {
	a.mux.Handle(pattern, a.wrap(routeOf(pattern), g, h))
}

// handleState serves pattern from the cluster state: on a server here,
// on a client agent by proxying to a server, which authorizes.
func (a *API) handleState(pattern string, g guard, h handlerFunc) {
	a.mux.Handle(pattern, a.stateHandler(routeOf(pattern), g, h))
}

func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return pattern[i+1:]
	}
	return pattern
}

// stateHandler is handleState's handler.
func (a *API) stateHandler(route string, g guard, h handlerFunc) http.Handler {
	if a.cfg.Server != nil {
		return a.wrap(route, g, h)
	}
	return a.instrument(route, func(w http.ResponseWriter, r *http.Request) {
		if len(a.liveServers()) == 0 {
			a.writeError(w, r, errNoLiveServer)
			return
		}
		if longLived(r) {
			ctx, cancel := a.untilQuit(r.Context())
			defer cancel()
			r = r.WithContext(ctx)
		}
		a.proxy.ServeHTTP(w, r)
	})
}

// wrap authenticates the caller, applies the guard, runs h, writes its
// error, instruments the route, and audits writes and refusals.
func (a *API) wrap(route string, g guard, h handlerFunc) http.Handler {
	return a.instrument(route, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := a.authenticate(r)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		var err error
		if g != nil {
			err = g(id, r)
		}
		refused := err != nil
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			a.writeError(w, r, err)
		}
		if refused || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			code := http.StatusOK
			if sw, ok := w.(*statusWriter); ok && sw.code != 0 {
				code = sw.code
			}
			a.audit(r, id, code, start)
		}
	})
}

func (a *API) routes() {
	key := func(r *http.Request) string { return kvKey(r) }
	// KV paths bypass the mux, whose path cleaning would turn the key
	// "a/../b" into "b" (and "." into the whole store) with a redirect.
	// Reads of one key need read on it; listings need read somewhere and
	// show only what may be read; writes need write on the key (a
	// recursive delete, on every key it removes).
	kvRead := func(id *identity, r *http.Request) error {
		if q := r.URL.Query(); q.Has("recurse") || q.Has("keys") {
			return needAny(acl.ResourceKV, acl.Read)(id, r)
		}
		return need(acl.ResourceKV, acl.Read, key)(id, r)
	}
	kvWrite := need(acl.ResourceKV, acl.Write, key)
	a.kv = map[string]http.Handler{
		http.MethodGet:    a.stateHandler("/v1/kv/{key...}", kvRead, a.kvGet),
		http.MethodPut:    a.stateHandler("/v1/kv/{key...}", kvWrite, a.kvPut),
		http.MethodPost:   a.stateHandler("/v1/kv/{key...}", kvWrite, a.kvPut),
		http.MethodDelete: a.stateHandler("/v1/kv/{key...}", kvWrite, a.kvDelete),
	}

	kvWriteAny, kvReadAny := needAny(acl.ResourceKV, acl.Write), needAny(acl.ResourceKV, acl.Read)
	a.handleState("PUT /v1/session/create", kvWriteAny, a.sessionCreate)
	a.handleState("PUT /v1/session/destroy/{id}", kvWriteAny, a.sessionDestroy)
	a.handleState("PUT /v1/session/renew/{id}", kvWriteAny, a.sessionRenew)
	a.handleState("GET /v1/session/info/{id}", kvReadAny, a.sessionInfo)
	a.handleState("GET /v1/session/list", kvReadAny, a.sessionList)
	a.handleState("GET /v1/session/node/{node}", kvReadAny, a.sessionList)

	opRead, opWrite := need(acl.ResourceOperator, acl.Read, nil), need(acl.ResourceOperator, acl.Write, nil)
	nodeReadAny := needAny(acl.ResourceNode, acl.Read)
	a.handleState("GET /v1/status/leader", opRead, a.statusLeader)
	a.handleState("GET /v1/status/peers", opRead, a.statusPeers)
	a.handle("GET /v1/status/health", nil, a.statusHealth)
	a.handleState("GET /v1/operator/raft/configuration", opRead, a.raftConfiguration)
	a.handleState("GET /v1/state/members", nodeReadAny, a.stateMembers)
	a.handleState("GET /v1/events", opRead, a.events)
	a.handleState("POST /v1/events", nodeOnly(""), a.postEvent)

	svcName := pathValue("name")
	svcReadAny := needAny(acl.ResourceService, acl.Read)
	svcWrite := need(acl.ResourceService, acl.Write, svcName)
	a.handleState("GET /v1/services", svcReadAny, a.serviceList)
	a.handleState("GET /v1/service/{name}", need(acl.ResourceService, acl.Read, svcName), a.serviceGet)
	a.handleState("PUT /v1/service/{name}", svcWrite, a.servicePut)
	a.handleState("DELETE /v1/service/{name}", svcWrite, a.serviceDelete)
	a.handleState("PUT /v1/service/{name}/drain", svcWrite, a.serviceDrain(true))
	a.handleState("PUT /v1/service/{name}/enable", svcWrite, a.serviceDrain(false))

	a.handle("GET /v1/gateway/services", svcReadAny, a.gatewayServices)

	// VIPs: their specs are the operator's; a lease is asked for by the
	// node itself (a node certificate may write only its own node).
	vipNode := need(acl.ResourceNode, acl.Write, func(r *http.Request) string { return r.URL.Query().Get("node") })
	a.handleState("GET /v1/vips", nodeReadAny, a.vipList)
	a.handleState("GET /v1/vip/{name}", nodeReadAny, a.vipGet)
	a.handleState("PUT /v1/vip/{name}", opWrite, a.vipPut)
	a.handleState("DELETE /v1/vip/{name}", opWrite, a.vipDelete)
	a.handleState("PUT /v1/vip/{name}/claim", vipNode, a.vipLease("claim"))
	a.handleState("PUT /v1/vip/{name}/renew", vipNode, a.vipLease("renew"))
	a.handleState("PUT /v1/vip/{name}/release", vipNode, a.vipLease("release"))

	nodeName := pathValue("name")
	nodeWrite := need(acl.ResourceNode, acl.Write, nodeName)
	a.handleState("GET /v1/replicas", svcReadAny, a.replicaList)
	a.handleState("GET /v1/nodes", nodeReadAny, a.nodeList)
	a.handleState("GET /v1/node/{name}", need(acl.ResourceNode, acl.Read, nodeName), a.nodeGet)
	a.handleState("PUT /v1/node/{name}/register", nodeWrite, a.nodeRegister)
	a.handleState("PUT /v1/node/{name}/replicas", nodeWrite, a.nodeReport)
	a.handleState("PUT /v1/node/{name}/eligibility", nodeWrite, a.nodeFlag(false))
	a.handleState("PUT /v1/node/{name}/drain", nodeWrite, a.nodeFlag(true))
	a.handle("GET /v1/agent/replica/{id}/logs", need(acl.ResourceService, acl.Read, replicaService), a.replicaLogs)
	a.handle("GET /v1/agent/replicas", need(acl.ResourceNode, acl.Read, func(*http.Request) string { return a.cfg.NodeName }), func(w http.ResponseWriter, r *http.Request) error {
		out := []api.ReplicaUsage{}
		if a.cfg.Usage != nil {
			out = a.cfg.Usage()
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})

	a.handle("GET /v1/agent/self", nodeReadAny, a.agentSelf)
	a.handle("GET /v1/agent/monitor", opRead, a.agentMonitor)
	a.handle("GET /v1/agent/members", nodeReadAny, a.agentMembers)

	a.handle("POST "+server.PathApplyBatch, nodeOnly(pki.RoleServer), a.internalApplyBatch)
	a.handle("GET "+server.PathReadIndex, nodeOnly(pki.RoleServer), a.internalReadIndex)

	a.securityRoutes(opWrite)

	var gatherer prometheus.Gatherer = prometheus.NewRegistry()
	if a.cfg.Gatherer != nil {
		gatherer = a.cfg.Gatherer
	}
	metricsH := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	a.handle("GET /v1/metrics", opRead, func(w http.ResponseWriter, r *http.Request) error {
		metricsH.ServeHTTP(w, r)
		return nil
	})
	if a.cfg.EnableDebug {
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile", "/debug/pprof/symbol", "/debug/pprof/trace"} {
			h := map[string]http.HandlerFunc{"/debug/pprof/": pprof.Index, "/debug/pprof/cmdline": pprof.Cmdline,
				"/debug/pprof/profile": pprof.Profile, "/debug/pprof/symbol": pprof.Symbol, "/debug/pprof/trace": pprof.Trace}[p]
			a.handle(p, opWrite, func(w http.ResponseWriter, r *http.Request) error {
				h(w, r)
				return nil
			})
		}
	}
	if a.cfg.UI != nil {
		a.mux.Handle("/ui/", a.cfg.UI)
		a.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusTemporaryRedirect))
	}
	a.handle("/", nil, func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// replicaService is the service of the replica a path names: replica IDs
// are the service name, a dash and 8 hex digits.
func replicaService(r *http.Request) string {
	id := r.PathValue("id")
	if i := strings.LastIndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
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
	case errors.Is(err, server.ErrJoinRefused):
		code = http.StatusForbidden
	case errors.Is(err, server.ErrNoCA), errors.Is(err, server.ErrNameTaken):
		code = http.StatusConflict
	case errors.As(err, new(*server.BadRequestError)):
		code = http.StatusBadRequest
	case errors.Is(err, state.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, state.ErrExists):
		code = http.StatusConflict
	case errors.Is(err, server.ErrNoLeader), errors.Is(err, server.ErrUnknownOutcome):
		code = http.StatusServiceUnavailable
	case r.Context().Err() != nil:
		code = http.StatusServiceUnavailable
	}
	switch {
	case errors.Is(err, errNoLiveServer):
		// A client agent still joining, or cut off: its callers are told,
		// and gossip logs the cause.
		a.logger.Debug("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	case code >= 500:
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
			if a.cfg.ClientTLS != nil {
				pr.Out.URL.Scheme = "https"
			}
			// Whom this agent vouches for: itself, when its own
			// components call with its certificate; else nobody (a
			// token, if any, speaks for the caller).
			proxied := "anonymous"
			if name, _ := peerNode(pr.In); name == a.cfg.NodeName {
				proxied = "node"
			}
			pr.Out.Header.Set(headerProxied, proxied)
			pr.Out.URL.Host = "127.0.0.1:1" // refused at once if the server vanished meanwhile
			if len(servers) > 0 {
				pr.Out.URL.Host = servers[rand.IntN(len(servers))]
			}
			pr.Out.Header.Set(headerOriginNode, a.cfg.NodeName)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if a.quit.Err() != nil {
				a.writeError(w, r, errorf(http.StatusServiceUnavailable, "this agent is shutting down"))
				return
			}
			a.writeError(w, r, errorf(http.StatusServiceUnavailable, "no server reachable from this client agent: %v", err))
		},
		FlushInterval: -1,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			TLSClientConfig:     a.cfg.ClientTLS,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
		},
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

// errNoLiveServer answers a state request on a client agent that knows no
// live server.
var errNoLiveServer = errorf(http.StatusServiceUnavailable, "this client agent knows no live server: is it joined to a cluster?")

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
	authz := who(r).authz
	out = slices.DeleteFunc(out, func(s api.GatewayService) bool { return !authz.Allow(acl.ResourceService, s.Name, acl.Read) })
	writeJSON(w, http.StatusOK, out)
	return nil
}
