package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// send is do with a JSON body (nil: none) and the JSON answer in out.
func (c *Client) send(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		var err error
		if body, err = jsonBody(in); err != nil {
			return err
		}
	}
	_, _, err := c.do(ctx, method, path, nil, body, out)
	return err
}

// ACLBootstrap makes the cluster's first management token. It works once;
// the answer is the only time the secret is shown.
func (c *Client) ACLBootstrap(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	return &out, c.send(ctx, http.MethodPut, "/v1/acl/bootstrap", nil, &out)
}

// ACLTokenSelf describes the client's own token.
func (c *Client) ACLTokenSelf(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	return &out, c.send(ctx, http.MethodGet, "/v1/acl/token/self", nil, &out)
}

// ACLTokenCreate makes an API token; the answer carries its secret, once.
func (c *Client) ACLTokenCreate(ctx context.Context, req *ACLTokenRequest) (*ACLToken, error) {
	var out ACLToken
	return &out, c.send(ctx, http.MethodPut, "/v1/acl/token", req, &out)
}

// ACLTokens lists the API tokens (without secrets).
func (c *Client) ACLTokens(ctx context.Context) ([]*ACLToken, error) {
	var out []*ACLToken
	return out, c.send(ctx, http.MethodGet, "/v1/acl/tokens", nil, &out)
}

// ACLTokenDelete revokes an API token by its accessor ID.
func (c *Client) ACLTokenDelete(ctx context.Context, accessor string) error {
	return c.send(ctx, http.MethodDelete, "/v1/acl/token/"+url.PathEscape(accessor), nil, nil)
}

// ACLPolicySet creates or replaces a policy.
func (c *Client) ACLPolicySet(ctx context.Context, p *ACLPolicy) (uint64, error) {
	var out struct {
		Index uint64 `json:"index"`
	}
	err := c.send(ctx, http.MethodPut, "/v1/acl/policy/"+url.PathEscape(p.Name), p, &out)
	return out.Index, err
}

// ACLPolicy reads one policy; nil when there is none.
func (c *Client) ACLPolicy(ctx context.Context, name string) (*ACLPolicy, error) {
	var out ACLPolicy
	_, found, err := c.do(ctx, http.MethodGet, "/v1/acl/policy/"+url.PathEscape(name), nil, nil, &out)
	if err != nil || !found {
		if IsNotFound(err) {
			err = nil
		}
		return nil, err
	}
	return &out, nil
}

// ACLPolicies lists the policies.
func (c *Client) ACLPolicies(ctx context.Context) ([]*ACLPolicy, error) {
	var out []*ACLPolicy
	return out, c.send(ctx, http.MethodGet, "/v1/acl/policies", nil, &out)
}

// ACLPolicyDelete removes a policy.
func (c *Client) ACLPolicyDelete(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/acl/policy/"+url.PathEscape(name), nil, nil)
}

// JoinTokenCreate makes a join token; the answer carries it, once.
func (c *Client) JoinTokenCreate(ctx context.Context, req *JoinTokenRequest) (*JoinToken, error) {
	var out JoinToken
	return &out, c.send(ctx, http.MethodPut, "/v1/acl/join-token", req, &out)
}

// JoinTokens lists the join tokens (without secrets).
func (c *Client) JoinTokens(ctx context.Context) ([]*JoinToken, error) {
	var out []*JoinToken
	return out, c.send(ctx, http.MethodGet, "/v1/acl/join-tokens", nil, &out)
}

// JoinTokenDelete revokes a join token by its ID.
func (c *Client) JoinTokenDelete(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, "/v1/acl/join-token/"+url.PathEscape(id), nil, nil)
}

// Join exchanges a join token for a node certificate (used by agents).
func (c *Client) Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error) {
	var out JoinResponse
	return &out, c.send(ctx, http.MethodPost, "/v1/join", req, &out)
}

// RenewCert asks for a fresh certificate for the calling node (used by
// agents, authenticated by their current certificate).
func (c *Client) RenewCert(ctx context.Context, req *CertRequest) (*CertResponse, error) {
	var out CertResponse
	return &out, c.send(ctx, http.MethodPut, "/v1/agent/cert", req, &out)
}

// Keyring reads the gossip keyring, blocking while q.WaitIndex is current
// (nodes only).
func (c *Client) Keyring(ctx context.Context, q *QueryOptions) (*Keyring, error) {
	v := url.Values{}
	q.values(v)
	var out Keyring
	_, _, err := c.do(ctx, http.MethodGet, "/v1/operator/keyring", v, nil, &out)
	return &out, err
}

// KeyringRotate makes a new primary gossip key; the previous one stays
// installed until the next rotation. It returns the change's index.
func (c *Client) KeyringRotate(ctx context.Context) (uint64, error) {
	var out struct {
		Index uint64 `json:"index"`
	}
	err := c.send(ctx, http.MethodPut, "/v1/operator/keyring/rotate", nil, &out)
	return out.Index, err
}
