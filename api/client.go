package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultAddress is where the client looks for an agent when neither an
// address nor HERD_ADDR is given.
const DefaultAddress = "http://127.0.0.1:7700"

// Client talks to one agent's HTTP API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// Config configures a Client. Empty fields take their environment
// variable, then the default.
type Config struct {
	// Address is "host:port" or a URL; $HERD_ADDR, then DefaultAddress.
	// A bare host:port means https when a CA is known (CACert or
	// TLSConfig), http otherwise.
	Address string
	// Token is the ACL token sent with every request; $HERD_TOKEN.
	Token string
	// CACert is a PEM file of the CA that signed the agent's
	// certificate; $HERD_CACERT.
	CACert string
	// TLSConfig, when set, is used as is (CACert is then ignored): agents
	// use it to present their node certificate.
	TLSConfig *tls.Config
	// TLSServerName is the name the agent's certificate is checked
	// against instead of Address's host: the agent's node name (its
	// certificate's DNS name) when Address is not one of the agent's IP
	// addresses, as with a port published by Docker on 127.0.0.1;
	// $HERD_TLS_SERVER_NAME.
	TLSServerName string
	// IgnoreEnv leaves the environment out: agents talking to each other
	// must not pick up an operator's $HERD_TOKEN.
	IgnoreEnv bool
}

// NewClient returns a client for the agent at address ("host:port" or a
// URL), with the token and CA from $HERD_TOKEN and $HERD_CACERT. An empty
// address means $HERD_ADDR, then DefaultAddress.
func NewClient(address string) (*Client, error) {
	return NewClientConfig(Config{Address: address})
}

// NewClientConfig returns a client configured by cfg.
func NewClientConfig(cfg Config) (*Client, error) {
	address := cfg.Address
	if address == "" && !cfg.IgnoreEnv {
		address = os.Getenv("HERD_ADDR")
	}
	if address == "" {
		address = DefaultAddress
	}
	if cfg.Token == "" && !cfg.IgnoreEnv {
		cfg.Token = os.Getenv("HERD_TOKEN")
	}
	if cfg.CACert == "" && cfg.TLSConfig == nil && !cfg.IgnoreEnv {
		cfg.CACert = os.Getenv("HERD_CACERT")
	}
	if cfg.TLSServerName == "" && !cfg.IgnoreEnv {
		cfg.TLSServerName = os.Getenv("HERD_TLS_SERVER_NAME")
	}
	tlsCfg := cfg.TLSConfig
	if tlsCfg == nil && cfg.CACert != "" {
		pemData, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificate (HERD_CACERT): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", cfg.CACert)
		}
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if tlsCfg != nil && cfg.TLSServerName != "" {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.ServerName = cfg.TLSServerName
	}
	if !strings.Contains(address, "://") {
		scheme := "http://"
		if tlsCfg != nil {
			scheme = "https://"
		}
		address = scheme + address
	}
	u, err := url.Parse(address)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("invalid agent address %q: want host:port or http(s)://host:port", address)
	}
	return &Client{
		base:  strings.TrimRight(u.String(), "/"),
		token: strings.TrimSpace(cfg.Token),
		http: &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute, TLSClientConfig: tlsCfg,
		}},
	}, nil
}

// Address is the agent's base URL.
func (c *Client) Address() string { return c.base }

// StatusError is an error response from the agent.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code) }

// IsNotFound reports whether err is a 404 from the agent.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// QueryOptions control reads.
type QueryOptions struct {
	// WaitIndex makes the read block until the answer's index differs.
	WaitIndex uint64
	// WaitTime bounds the blocking wait (server default 5m).
	WaitTime time.Duration
	// Stale allows any server to answer from its local, possibly stale,
	// state.
	Stale bool
}

// Meta is what a response says besides its body.
type Meta struct {
	// Index is the index to pass as WaitIndex to block for changes.
	Index uint64
	// Header holds the raw response headers.
	Header http.Header
}

func (o *QueryOptions) values(v url.Values) {
	if o == nil {
		return
	}
	if o.WaitIndex > 0 {
		v.Set("index", strconv.FormatUint(o.WaitIndex, 10))
	}
	if o.WaitTime > 0 {
		v.Set("wait", o.WaitTime.String())
	}
	if o.Stale {
		v.Set("stale", "")
	}
}

// newRequest builds a request for path with query (flags such as
// "recurse" without "=") and the client's token.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + strings.ReplaceAll(query.Encode(), "=&", "&")
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request; out (if not nil) receives the JSON body. A 404 with
// an empty body is reported as (meta, false, nil) so "missing" is not an
// error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, out any) (*Meta, bool, error) {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	meta := &Meta{Header: resp.Header}
	if s := resp.Header.Get("X-Herd-Index"); s != "" {
		meta.Index, _ = strconv.ParseUint(s, 10, 64)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return meta, false, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusNotFound && len(bytes.TrimSpace(data)) == 0 {
		return meta, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return meta, false, statusError(resp.StatusCode, data)
	}
	if out != nil {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
		} else if err := json.Unmarshal(data, out); err != nil {
			return meta, false, fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return meta, true, nil
}

// statusError is the error of an answer other than 200: the message of
// the JSON error body, or the body as text.
func statusError(code int, body []byte) error {
	var e Error
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &StatusError{Code: code, Message: msg}
}

func kvPath(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/v1/kv/" + strings.Join(parts, "/")
}

// KVGet reads one key; it returns nil when the key does not exist.
func (c *Client) KVGet(ctx context.Context, key string, q *QueryOptions) (*KVPair, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out []*KVPair
	meta, found, err := c.do(ctx, http.MethodGet, kvPath(key), v, nil, &out)
	if err != nil || !found || len(out) == 0 {
		return nil, meta, err
	}
	return out[0], meta, nil
}

// KVList reads every key under prefix.
func (c *Client) KVList(ctx context.Context, prefix string, q *QueryOptions) ([]*KVPair, *Meta, error) {
	v := url.Values{"recurse": {""}}
	q.values(v)
	var out []*KVPair
	meta, _, err := c.do(ctx, http.MethodGet, kvPath(prefix), v, nil, &out)
	return out, meta, err
}

// KVKeys lists key names under prefix, folded at separator if not empty.
func (c *Client) KVKeys(ctx context.Context, prefix, separator string, q *QueryOptions) ([]string, *Meta, error) {
	v := url.Values{"keys": {""}}
	if separator != "" {
		v.Set("separator", separator)
	}
	q.values(v)
	var out []string
	meta, _, err := c.do(ctx, http.MethodGet, kvPath(prefix), v, nil, &out)
	return out, meta, err
}

// WriteOptions modify a KV write.
type WriteOptions struct {
	// Flags is stored with the value.
	Flags uint64
	// CAS, when not nil, makes the write conditional on the key's
	// ModifyIndex (0: the key must not exist).
	CAS *uint64
}

// KVPut writes a key. It reports false when a CAS condition failed.
func (c *Client) KVPut(ctx context.Context, key string, value []byte, o *WriteOptions) (bool, *Meta, error) {
	v := url.Values{}
	if o != nil {
		if o.Flags != 0 {
			v.Set("flags", strconv.FormatUint(o.Flags, 10))
		}
		if o.CAS != nil {
			v.Set("cas", strconv.FormatUint(*o.CAS, 10))
		}
	}
	var ok bool
	meta, _, err := c.do(ctx, http.MethodPut, kvPath(key), v, bytes.NewReader(value), &ok)
	return ok, meta, err
}

// KVDelete deletes a key, or every key under it when recurse is true.
func (c *Client) KVDelete(ctx context.Context, key string, recurse bool) (*Meta, error) {
	v := url.Values{}
	if recurse {
		v.Set("recurse", "")
	}
	meta, _, err := c.do(ctx, http.MethodDelete, kvPath(key), v, nil, nil)
	return meta, err
}

// KVAcquire tries to take key's lock for session, writing value. It returns
// whether it got the lock and, if so, the fencing token: the Raft index of
// the acquisition, which only ever rises.
func (c *Client) KVAcquire(ctx context.Context, key, session string, value []byte) (bool, uint64, error) {
	var ok bool
	meta, _, err := c.do(ctx, http.MethodPut, kvPath(key), url.Values{"acquire": {session}}, bytes.NewReader(value), &ok)
	if err != nil || !ok {
		return false, 0, err
	}
	token, _ := strconv.ParseUint(meta.Header.Get("X-Herd-Lock-Index"), 10, 64)
	return true, token, nil
}

// KVRelease releases key's lock held by session.
func (c *Client) KVRelease(ctx context.Context, key, session string) (bool, error) {
	var ok bool
	_, _, err := c.do(ctx, http.MethodPut, kvPath(key), url.Values{"release": {session}}, nil, &ok)
	return ok, err
}

// SessionCreate creates a session and returns its ID. Only Name, Node,
// LockDelay, Behavior and TTL of se are sent.
func (c *Client) SessionCreate(ctx context.Context, se *SessionEntry) (string, error) {
	body := map[string]any{}
	if se != nil {
		if se.Name != "" {
			body["Name"] = se.Name
		}
		if se.Node != "" {
			body["Node"] = se.Node
		}
		body["LockDelay"] = se.LockDelay.String()
		if se.Behavior != "" {
			body["Behavior"] = se.Behavior
		}
		if se.TTL != "" {
			body["TTL"] = se.TTL
		}
	}
	buf, _ := json.Marshal(body)
	var out struct{ ID string }
	if _, _, err := c.do(ctx, http.MethodPut, "/v1/session/create", nil, bytes.NewReader(buf), &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// SessionRenew resets a session's TTL. It returns an error satisfying
// IsNotFound when the session is gone.
func (c *Client) SessionRenew(ctx context.Context, id string) error {
	var out []*SessionEntry
	_, found, err := c.do(ctx, http.MethodPut, "/v1/session/renew/"+url.PathEscape(id), nil, nil, &out)
	if err == nil && !found {
		return &StatusError{Code: http.StatusNotFound, Message: "session " + id + " not found"}
	}
	return err
}

// SessionDestroy invalidates a session, releasing its locks.
func (c *Client) SessionDestroy(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, http.MethodPut, "/v1/session/destroy/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// SessionInfo reads a session; nil if it does not exist.
func (c *Client) SessionInfo(ctx context.Context, id string, q *QueryOptions) (*SessionEntry, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out []*SessionEntry
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/session/info/"+url.PathEscape(id), v, nil, &out)
	if err != nil || len(out) == 0 {
		return nil, meta, err
	}
	return out[0], meta, nil
}

// Leader returns the leader's node name ("" if there is none).
func (c *Client) Leader(ctx context.Context) (string, error) {
	var name string
	_, _, err := c.do(ctx, http.MethodGet, "/v1/status/leader", url.Values{"node": {""}}, nil, &name)
	return name, err
}

// Peers returns the Raft addresses of the voters.
func (c *Client) Peers(ctx context.Context) ([]string, error) {
	var out []string
	_, _, err := c.do(ctx, http.MethodGet, "/v1/status/peers", nil, nil, &out)
	return out, err
}

// RaftConfiguration returns the Raft configuration with leader and voter
// flags.
func (c *Client) RaftConfiguration(ctx context.Context) (*RaftConfiguration, error) {
	var out RaftConfiguration
	if _, _, err := c.do(ctx, http.MethodGet, "/v1/operator/raft/configuration", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RaftStats is RaftConfiguration with every server's term, applied index
// and lag behind the leader, as each server reports them.
func (c *Client) RaftStats(ctx context.Context) (*RaftConfiguration, error) {
	var out RaftConfiguration
	if _, _, err := c.do(ctx, http.MethodGet, "/v1/operator/raft/configuration", url.Values{"stats": {""}}, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Self describes the agent the client talks to.
func (c *Client) Self(ctx context.Context) (*AgentSelf, error) {
	var out AgentSelf
	if _, _, err := c.do(ctx, http.MethodGet, "/v1/agent/self", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Members lists the gossip members the agent knows, including failed and
// left ones.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var out []Member
	_, _, err := c.do(ctx, http.MethodGet, "/v1/agent/members", nil, nil, &out)
	return out, err
}

// Metrics returns the agent's Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	_, _, err := c.do(ctx, http.MethodGet, "/v1/metrics", nil, nil, &out)
	return out, err
}

// ServicePut creates or replaces a service and returns the Raft index of
// the change.
func (c *Client) ServicePut(ctx context.Context, svc *Service) (uint64, error) {
	body, err := json.Marshal(svc)
	if err != nil {
		return 0, fmt.Errorf("encoding service: %w", err)
	}
	var out struct{ Index uint64 }
	_, _, err = c.do(ctx, http.MethodPut, "/v1/service/"+url.PathEscape(svc.Name), nil, bytes.NewReader(body), &out)
	return out.Index, err
}

// ServiceGet reads one service; nil when there is none.
func (c *Client) ServiceGet(ctx context.Context, name string, q *QueryOptions) (*ServiceEntry, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out ServiceEntry
	meta, found, err := c.do(ctx, http.MethodGet, "/v1/service/"+url.PathEscape(name), v, nil, &out)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil, meta, nil
	}
	if err != nil || !found {
		return nil, meta, err
	}
	return &out, meta, nil
}

// ServiceList lists the services, sorted by name.
func (c *Client) ServiceList(ctx context.Context, q *QueryOptions) ([]*ServiceEntry, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out []*ServiceEntry
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/services", v, nil, &out)
	return out, meta, err
}

// ServiceListResolved is ServiceList as gateways see it: the backends of
// a service that herd runs are its running, healthy replicas.
func (c *Client) ServiceListResolved(ctx context.Context, q *QueryOptions) ([]*ServiceEntry, *Meta, error) {
	v := url.Values{"resolve": {""}}
	q.values(v)
	var out []*ServiceEntry
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/services", v, nil, &out)
	return out, meta, err
}

// ServiceDelete removes a service.
func (c *Client) ServiceDelete(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, "/v1/service/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// BackendDrain takes a backend of a service out of rotation (drain true)
// or puts it back (drain false), on every gateway.
func (c *Client) BackendDrain(ctx context.Context, service, backend string, drain bool) error {
	action := "enable"
	if drain {
		action = "drain"
	}
	_, _, err := c.do(ctx, http.MethodPut, "/v1/service/"+url.PathEscape(service)+"/"+action, url.Values{"backend": {backend}}, nil, nil)
	return err
}

// GatewayServices reports how this agent's gateway runs each service:
// per backend health, ejection, load.
func (c *Client) GatewayServices(ctx context.Context) ([]GatewayService, error) {
	var out []GatewayService
	_, _, err := c.do(ctx, http.MethodGet, "/v1/gateway/services", nil, nil, &out)
	return out, err
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// Replicas lists replicas: all, or those of a service, or on a node (both
// may be given).
func (c *Client) Replicas(ctx context.Context, service, node string, q *QueryOptions) ([]*Replica, *Meta, error) {
	v := url.Values{}
	q.values(v)
	if service != "" {
		v.Set("service", service)
	}
	if node != "" {
		v.Set("node", node)
	}
	var out []*Replica
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/replicas", v, nil, &out)
	return out, meta, err
}

// Nodes lists the nodes that can run replicas.
func (c *Client) Nodes(ctx context.Context, q *QueryOptions) ([]*Node, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out []*Node
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/nodes", v, nil, &out)
	return out, meta, err
}

// NodesUsage lists the nodes as Nodes does, each with the CPU its
// replicas use now (UsageCPU) as its agent reports it.
func (c *Client) NodesUsage(ctx context.Context) ([]*Node, error) {
	var out []*Node
	_, _, err := c.do(ctx, http.MethodGet, "/v1/nodes", url.Values{"usage": {""}}, nil, &out)
	return out, err
}

// Node reads one node; nil when there is none.
func (c *Client) Node(ctx context.Context, name string) (*Node, error) {
	var out *Node
	_, _, err := c.do(ctx, http.MethodGet, "/v1/node/"+url.PathEscape(name), nil, nil, &out)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil, nil
	}
	return out, err
}

// NodeRegister records what a node reports about itself.
func (c *Client) NodeRegister(ctx context.Context, n *Node) error {
	body, err := jsonBody(n)
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, http.MethodPut, "/v1/node/"+url.PathEscape(n.Name)+"/register", nil, body, nil)
	return err
}

// NodeReport records a node's report about its replicas.
func (c *Client) NodeReport(ctx context.Context, node string, st []ReplicaStatus) error {
	body, err := jsonBody(st)
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, http.MethodPut, "/v1/node/"+url.PathEscape(node)+"/replicas", nil, body, nil)
	return err
}

// NodeEligibility makes a node eligible for new replicas or not.
func (c *Client) NodeEligibility(ctx context.Context, node string, eligible bool) error {
	_, _, err := c.do(ctx, http.MethodPut, "/v1/node/"+url.PathEscape(node)+"/eligibility",
		url.Values{"enable": {strconv.FormatBool(eligible)}}, nil, nil)
	return err
}

// NodeDrain starts (or ends) draining a node: its replicas move elsewhere.
func (c *Client) NodeDrain(ctx context.Context, node string, drain bool) error {
	_, _, err := c.do(ctx, http.MethodPut, "/v1/node/"+url.PathEscape(node)+"/drain",
		url.Values{"enable": {strconv.FormatBool(drain)}}, nil, nil)
	return err
}

// ReplicaLogs opens a replica's log stream (stdout or stderr) on the agent
// this client talks to, which must be the one running it: the last tail
// lines (0: all), then new lines while follow is set. Close the reader.
func (c *Client) ReplicaLogs(ctx context.Context, id, stream string, tail int, follow bool) (io.ReadCloser, error) {
	v := url.Values{"stream": {stream}, "tail": {strconv.Itoa(tail)}}
	if follow {
		v.Set("follow", "true")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/agent/replica/"+url.PathEscape(id)+"/logs", v, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, statusError(resp.StatusCode, data)
	}
	return resp.Body, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() {
	if t, ok := c.http.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// AgentReplicas reports what the replicas of the agent this client talks
// to use.
func (c *Client) AgentReplicas(ctx context.Context) ([]ReplicaUsage, error) {
	var out []ReplicaUsage
	_, _, err := c.do(ctx, http.MethodGet, "/v1/agent/replicas", nil, nil, &out)
	return out, err
}
