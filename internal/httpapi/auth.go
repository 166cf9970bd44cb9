package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/pki"
)

// identity is who a request comes from, and what it may do.
type identity struct {
	// kind is "token", "node", "anonymous", or "open" (security off).
	kind string
	// name is the token's accessor ID or the node's name.
	name string
	// role is the node's role.
	role  string
	authz *acl.Authorizer
	// err is why a presented token was not accepted; the request is
	// then anonymous, and refused unless the endpoint is open to all.
	err error
}

func (id *identity) String() string {
	switch id.kind {
	case "token", "node":
		return id.kind + ":" + id.name
	}
	return id.kind
}

// Identity kinds.
const (
	kindToken     = "token"
	kindNode      = "node"
	kindAnonymous = "anonymous"
	kindOpen      = "open"
)

// Headers a client agent's proxy sets, trusted only from nodes of the
// cluster. headerProxied says whom the client agent serves: "node" (its
// own components, which presented its certificate) or "anonymous" (any
// other caller without a token). A token travels as it came.
const headerProxied = "X-Herd-Proxied"

type ctxKey struct{}

// who returns the identity authenticate stored in the request.
func who(r *http.Request) *identity {
	if id, ok := r.Context().Value(ctxKey{}).(*identity); ok {
		return id
	}
	return &identity{kind: kindAnonymous, authz: &acl.Authorizer{}}
}

// bearer returns the token a request carries: Authorization: Bearer, or
// X-Consul-Token for Consul's clients.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return "\x00malformed"
	}
	return strings.TrimSpace(r.Header.Get("X-Consul-Token"))
}

// errBadToken is what any unusable token gets; the token is never echoed.
var errBadToken = errorf(http.StatusUnauthorized, "ACL token not found: it is unknown, revoked or expired")

// authenticate works out who sent r.
func (a *API) authenticate(r *http.Request) *identity {
	if !a.cfg.Secure {
		return &identity{kind: kindOpen, authz: acl.Management()}
	}
	if tok := bearer(r); tok != "" {
		authz, accessor, err := a.resolveToken(r.Context(), tok)
		if err != nil {
			return &identity{kind: kindAnonymous, authz: &acl.Authorizer{}, err: err}
		}
		return &identity{kind: kindToken, name: accessor, authz: authz}
	}
	if name, role := peerNode(r); name != "" {
		switch r.Header.Get(headerProxied) {
		case "", "node":
			return &identity{kind: kindNode, name: name, role: role, authz: acl.NodeAuthorizer(name, role)}
		}
	}
	return &identity{kind: kindAnonymous, authz: &acl.Authorizer{}}
}

// peerNode returns the name and role in the verified certificate of the
// node that sent r, if it presented one.
func peerNode(r *http.Request) (name, role string) {
	if r.TLS == nil {
		return "", ""
	}
	name, role, err := pki.PeerIdentity(*r.TLS)
	if err != nil {
		return "", ""
	}
	return name, role
}

// guard decides whether an identity may make a request; nil allows all.
type guard func(id *identity, r *http.Request) error

// deny explains a refusal: 401 without credentials, 403 with ones that
// lack the permission.
func deny(id *identity, what string) error {
	if id.err != nil {
		return id.err
	}
	if id.kind == kindAnonymous {
		return errorf(http.StatusUnauthorized, "this endpoint needs an ACL token (Authorization: Bearer <secret>; the CLI reads $HERD_TOKEN): %s", what)
	}
	return errorf(http.StatusForbidden, "permission denied: %s lacks %s", id, what)
}

// need requires access to resource on the name that name(r) picks.
func need(resource string, access acl.Access, name func(r *http.Request) string) guard {
	return func(id *identity, r *http.Request) error {
		n := ""
		if name != nil {
			n = name(r)
		}
		if id.authz.Allow(resource, n, access) {
			return nil
		}
		if n == "" {
			return deny(id, fmt.Sprintf("%s %s", resource, access))
		}
		return deny(id, fmt.Sprintf("%s %s on %q", resource, access, n))
	}
}

// needAny requires access to some name of resource (the handler filters).
func needAny(resource string, access acl.Access) guard {
	return func(id *identity, r *http.Request) error {
		if id.authz.AllowAny(resource, access) {
			return nil
		}
		return deny(id, fmt.Sprintf("%s %s", resource, access))
	}
}

// nodeOnly admits cluster nodes with the role ("" any), calling directly
// or through their own agent's proxy.
func nodeOnly(role string) guard {
	return func(id *identity, r *http.Request) error {
		if id.kind == kindOpen {
			return nil
		}
		if id.kind == kindNode && (role == "" || id.role == role) {
			return nil
		}
		if role == "" {
			role = "node"
		}
		return errorf(http.StatusForbidden, "only a cluster %s, with its certificate, may call this endpoint", role)
	}
}

// oneOf admits a request that any of the guards admits, and otherwise
// explains with the first guard's refusal.
func oneOf(gs ...guard) guard {
	return func(id *identity, r *http.Request) error {
		var first error
		for _, g := range gs {
			err := g(id, r)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return first
	}
}

// authenticated admits any valid identity.
func authenticated(id *identity, r *http.Request) error {
	if id.kind == kindAnonymous {
		return deny(id, "a valid token")
	}
	return nil
}

func pathValue(name string) func(r *http.Request) string {
	return func(r *http.Request) string { return r.PathValue(name) }
}

// tokenCache remembers resolved tokens briefly.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	authz    *acl.Authorizer
	accessor string
	// index is the ACL tables' index it was resolved at (servers); at is
	// when it was resolved (client agents, which keep it clientTokenTTL).
	index     uint64
	at        time.Time
	expiresAt time.Time
}

// clientTokenTTL is how long a client agent trusts a token it resolved
// through a server: a revocation reaches it within this time.
const clientTokenTTL = 500 * time.Millisecond

// resolveToken finds a token's authorizer: on a server from its state, on
// a client agent from a server, briefly cached.
func (a *API) resolveToken(ctx context.Context, secret string) (*acl.Authorizer, string, error) {
	if !acl.LooksLikeSecret(secret) {
		return nil, "", errBadToken
	}
	hash := pki.HashSecret(secret)
	now := time.Now()
	a.tokens.mu.Lock()
	c, ok := a.tokens.m[hash]
	a.tokens.mu.Unlock()
	if srv := a.cfg.Server; srv != nil {
		idx := srv.Store().ACLIndex()
		if ok && c.index == idx && (c.expiresAt.IsZero() || now.Before(c.expiresAt)) {
			return c.authz, c.accessor, nil
		}
		idx, t, err := srv.Store().ACLTokenBySecret(hash)
		if err == nil && t == nil && !srv.IsLeader() {
			// A token made a moment ago may not have reached this
			// follower yet: catch up with the leader and look again.
			if err = srv.ConsistentRead(ctx); err == nil {
				idx, t, err = srv.Store().ACLTokenBySecret(hash)
			}
		}
		if err != nil {
			return nil, "", err
		}
		if t == nil || (!t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)) {
			return nil, "", errBadToken
		}
		authz := a.compileToken(&t.ACLToken, nil)
		a.tokens.put(hash, cachedToken{authz: authz, accessor: t.AccessorID, index: idx, expiresAt: t.ExpiresAt})
		return authz, t.AccessorID, nil
	}
	if ok && now.Sub(c.at) < clientTokenTTL && (c.expiresAt.IsZero() || now.Before(c.expiresAt)) {
		return c.authz, c.accessor, nil
	}
	t, err := a.tokenFromServer(ctx, secret)
	if err != nil {
		return nil, "", err
	}
	authz := a.compileToken(t, t.PolicyDetails)
	a.tokens.put(hash, cachedToken{authz: authz, accessor: t.AccessorID, at: now, expiresAt: t.ExpiresAt})
	return authz, t.AccessorID, nil
}

func (c *tokenCache) put(hash string, t cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]cachedToken{}
	}
	c.m[hash] = t
}

// compileToken builds a token's authorizer from its policies: details
// when given (from a server), else this server's state.
func (a *API) compileToken(t *api.ACLToken, details []api.ACLPolicy) *acl.Authorizer {
	if t.Management {
		return acl.Management()
	}
	var ps []acl.Policy
	if details != nil {
		for _, p := range details {
			ps = append(ps, acl.FromAPI(p))
		}
	} else {
		for _, name := range t.Policies {
			if p, err := a.cfg.Server.Store().ACLPolicy(name); err == nil && p != nil {
				ps = append(ps, acl.FromAPI(*p))
			}
		}
	}
	return acl.Compile(ps...)
}

// tokenFromServer asks a live server about a token (client agents).
func (a *API) tokenFromServer(ctx context.Context, secret string) (*api.ACLToken, error) {
	servers := a.liveServers()
	if len(servers) == 0 {
		return nil, errorf(http.StatusServiceUnavailable, "this client agent knows no live server to check the token with")
	}
	var lastErr error
	for _, s := range servers {
		c, err := a.agentClient(s, secret)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t, err := c.ACLTokenSelf(cctx)
		cancel()
		c.Close()
		if err == nil {
			return t, nil
		}
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			return nil, errBadToken
		}
		lastErr = err
	}
	return nil, errorf(http.StatusServiceUnavailable, "checking the token with a server: %v", lastErr)
}

// audit logs a write (or a refused request) through the API.
func (a *API) audit(r *http.Request, id *identity, code int, start time.Time) {
	if a.cfg.Audit == nil {
		return
	}
	a.cfg.Audit.LogAttrs(r.Context(), slog.LevelInfo, "api write",
		slog.String("node", a.cfg.NodeName),
		slog.String("who", id.String()),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.String("remote", r.RemoteAddr),
		slog.Duration("took", time.Since(start)),
	)
}
