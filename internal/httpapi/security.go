package httpapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/state"
)

// proxiedByNode reports whether r came through a cluster node's proxy.
func proxiedByNode(r *http.Request) bool {
	name, _ := peerNode(r)
	return name != "" && r.Header.Get(headerProxied) != ""
}

// securityRoutes serves ACLs, join tokens, joining, certificate renewal
// and the gossip keyring.
func (a *API) securityRoutes(opWrite guard) {
	aclRead, aclWrite := need(acl.ResourceACL, acl.Read, nil), need(acl.ResourceACL, acl.Write, nil)
	a.handleState("PUT /v1/acl/bootstrap", nil, a.aclBootstrap)
	a.handleState("GET /v1/acl/token/self", authenticated, a.aclTokenSelf)
	a.handleState("GET /v1/acl/tokens", aclRead, a.aclTokenList)
	a.handleState("PUT /v1/acl/token", aclWrite, a.aclTokenCreate)
	a.handleState("DELETE /v1/acl/token/{id}", aclWrite, a.aclTokenDelete)
	a.handleState("GET /v1/acl/policies", aclRead, a.aclPolicyList)
	a.handleState("GET /v1/acl/policy/{name}", aclRead, a.aclPolicyGet)
	a.handleState("PUT /v1/acl/policy/{name}", aclWrite, a.aclPolicySet)
	a.handleState("DELETE /v1/acl/policy/{name}", aclWrite, a.aclPolicyDelete)
	a.handleState("GET /v1/acl/join-tokens", aclRead, a.joinTokenList)
	a.handleState("PUT /v1/acl/join-token", aclWrite, a.joinTokenCreate)
	a.handleState("DELETE /v1/acl/join-token/{id}", aclWrite, a.joinTokenDelete)
	a.handleState("POST /v1/join", nil, a.join)
	a.handle("PUT /v1/agent/cert", nodeOnly(""), a.renewCert)
	a.handleState("GET /v1/operator/keyring", oneOf(nodeOnly(""), opWrite), a.keyringGet)
	a.handleState("PUT /v1/operator/keyring/rotate", opWrite, a.keyringRotate)
}

// secured refuses security endpoints on an agent running without it.
func (a *API) secured() error {
	if !a.cfg.Secure {
		return errorf(http.StatusBadRequest, "security is disabled on this agent (security.disabled): there are no ACLs or certificates to manage")
	}
	return nil
}

func (a *API) aclBootstrap(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	t, secret, err := acl.NewToken("bootstrap management token", nil, true, 0, time.Now().UTC())
	if err != nil {
		return err
	}
	entry := &state.ACLTokenEntry{ACLToken: tokenToAPI(t), SecretHash: t.SecretHash}
	res, err := a.apply(r, &server.Command{Op: server.OpACLBootstrap, ACLToken: entry})
	if err != nil {
		if he := (*httpError)(nil); errors.As(err, &he) && he.code == http.StatusConflict {
			return errorf(http.StatusConflict, "ACLs are bootstrapped already: ask the holder of a management token, or create one with `herd acl token create` using one")
		}
		return err
	}
	out := entry.ACLToken
	out.SecretID, out.CreateIndex = secret, res.Index
	writeJSON(w, http.StatusOK, out)
	return nil
}

func tokenToAPI(t acl.Token) api.ACLToken {
	return api.ACLToken{
		AccessorID: t.AccessorID, Description: t.Description, Policies: t.Policies,
		Management: t.Management, ExpiresAt: t.ExpiresAt, CreateTime: t.CreateTime,
	}
}

func (a *API) aclTokenSelf(w http.ResponseWriter, r *http.Request) error {
	id := who(r)
	if id.kind != kindToken {
		return errorf(http.StatusBadRequest, "this request carries no token (it comes from %s)", id)
	}
	_, toks, err := a.cfg.Server.Store().ACLTokens(nil)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.AccessorID != id.name {
			continue
		}
		out := t.ACLToken
		for _, name := range out.Policies {
			if p, err := a.cfg.Server.Store().ACLPolicy(name); err == nil && p != nil {
				out.PolicyDetails = append(out.PolicyDetails, *p)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	return errBadToken
}

func (a *API) aclTokenList(w http.ResponseWriter, r *http.Request) error {
	if err := a.consistent(r); err != nil {
		return err
	}
	idx, toks, err := a.cfg.Server.Store().ACLTokens(nil)
	if err != nil {
		return err
	}
	out := make([]api.ACLToken, 0, len(toks))
	for _, t := range toks {
		out = append(out, t.ACLToken)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateIndex < out[j].CreateIndex })
	a.setIndexHeaders(w, idx)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) aclTokenCreate(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	var req api.ACLTokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return errorf(http.StatusBadRequest, "ttl: %q is not a positive duration such as 24h", req.TTL)
		}
		ttl = d
	}
	if !req.Management && len(req.Policies) == 0 {
		return errorf(http.StatusBadRequest, "policies: a token needs at least one policy (or management: true)")
	}
	for _, name := range req.Policies {
		if p, err := a.cfg.Server.Store().ACLPolicy(name); err != nil || p == nil {
			return errorf(http.StatusBadRequest, "policies: no policy named %q (create it first: herd acl policy apply)", name)
		}
	}
	t, secret, err := acl.NewToken(req.Description, req.Policies, req.Management, ttl, time.Now().UTC())
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	entry := &state.ACLTokenEntry{ACLToken: tokenToAPI(t), SecretHash: t.SecretHash}
	res, err := a.apply(r, &server.Command{Op: server.OpACLTokenSet, ACLToken: entry})
	if err != nil {
		return err
	}
	out := entry.ACLToken
	out.SecretID, out.CreateIndex = secret, res.Index
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) aclTokenDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpACLTokenDel, ID: r.PathValue("id")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, true)
	return nil
}

func (a *API) aclPolicyList(w http.ResponseWriter, r *http.Request) error {
	if err := a.consistent(r); err != nil {
		return err
	}
	idx, ps, err := a.cfg.Server.Store().ACLPolicies(nil)
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, idx)
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (a *API) aclPolicyGet(w http.ResponseWriter, r *http.Request) error {
	if err := a.consistent(r); err != nil {
		return err
	}
	p, err := a.cfg.Server.Store().ACLPolicy(r.PathValue("name"))
	if err != nil {
		return err
	}
	if p == nil {
		return errorf(http.StatusNotFound, "no policy named %q", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) aclPolicySet(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	var p api.ACLPolicy
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	if p.Name == "" {
		p.Name = r.PathValue("name")
	}
	if p.Name != r.PathValue("name") {
		return errorf(http.StatusBadRequest, "name: %q in the body differs from %q in the path", p.Name, r.PathValue("name"))
	}
	if err := acl.FromAPI(p).Validate(); err != nil {
		return errorf(http.StatusBadRequest, "policy %q: %v", p.Name, err)
	}
	p.CreateIndex, p.ModifyIndex = 0, 0
	res, err := a.apply(r, &server.Command{Op: server.OpACLPolicySet, Policy: &p})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

func (a *API) aclPolicyDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpACLPolicyDel, ID: r.PathValue("name")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, true)
	return nil
}

func (a *API) joinTokenList(w http.ResponseWriter, r *http.Request) error {
	if err := a.consistent(r); err != nil {
		return err
	}
	idx, toks, err := a.cfg.Server.Store().JoinTokens(nil)
	if err != nil {
		return err
	}
	out := make([]api.JoinToken, 0, len(toks))
	for _, t := range toks {
		out = append(out, t.JoinToken)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreateIndex < out[j].CreateIndex })
	a.setIndexHeaders(w, idx)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Join token lifetimes.
const (
	defaultJoinTTL = 24 * time.Hour
	maxJoinTTL     = 30 * 24 * time.Hour
)

func (a *API) joinTokenCreate(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	var req api.JoinTokenRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmptyBody) {
		return err
	}
	switch req.Role {
	case "":
		req.Role = pki.RoleClient
	case pki.RoleClient, pki.RoleServer:
	default:
		return errorf(http.StatusBadRequest, "role: %q is not one of client, server", req.Role)
	}
	ttl := defaultJoinTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > maxJoinTTL {
			return errorf(http.StatusBadRequest, "ttl: %q is not a duration between 1s and %s", req.TTL, maxJoinTTL)
		}
		ttl = d
	}
	if len(req.Description) > 256 {
		return errorf(http.StatusBadRequest, "description: longer than 256 bytes")
	}
	t, err := a.cfg.Server.CreateJoinToken(r.Context(), req.Role, req.Description, ttl)
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, t.CreateIndex)
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) joinTokenDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpJoinTokenDel, ID: r.PathValue("id")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, true)
	return nil
}

func (a *API) join(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	var req api.JoinRequest
	if err := decodeJSONLimit(r, &req, 64<<10); err != nil {
		return err
	}
	if req.Name == "" {
		return errorf(http.StatusBadRequest, "name: required")
	}
	resp, err := a.cfg.Server.Join(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *API) renewCert(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Server == nil {
		return errorf(http.StatusBadRequest, "certificates are renewed by servers; this is a client agent")
	}
	id := who(r)
	var req api.CertRequest
	if err := decodeJSONLimit(r, &req, 64<<10); err != nil {
		return err
	}
	resp, err := a.cfg.Server.RenewCert(r.Context(), id.name, id.role, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *API) keyringGet(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	var out api.Keyring
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, keys, err := a.cfg.Server.GossipKeyring(ws)
		out = api.Keyring{Index: idx, Keys: encodeKeys(keys)}
		return idx, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func encodeKeys(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = base64.StdEncoding.EncodeToString(k)
	}
	return out
}

func (a *API) keyringRotate(w http.ResponseWriter, r *http.Request) error {
	if err := a.secured(); err != nil {
		return err
	}
	idx, err := a.cfg.Server.RotateKeyring(r.Context())
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, idx)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
	return nil
}

// consistent makes a read linearizable unless ?stale is given.
func (a *API) consistent(r *http.Request) error {
	if r.URL.Query().Has("stale") {
		return nil
	}
	return a.cfg.Server.ConsistentRead(r.Context())
}
