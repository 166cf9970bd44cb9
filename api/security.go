package api

import "time"

// ACLRule grants Access ("read", "write" or "deny") on every name of
// Resource (kv, service, node, job, acl, operator) that starts with Prefix
// ("" means every name).
type ACLRule struct {
	Resource string `json:"resource" yaml:"resource"`
	Prefix   string `json:"prefix,omitempty" yaml:"prefix"`
	Access   string `json:"access" yaml:"access"`
}

// ACLPolicy is a named set of rules that tokens carry.
type ACLPolicy struct {
	Name        string    `json:"name" yaml:"name"`
	Description string    `json:"description,omitempty" yaml:"description"`
	Rules       []ACLRule `json:"rules" yaml:"rules"`
	CreateIndex uint64    `json:"create_index,omitempty" yaml:"-"`
	ModifyIndex uint64    `json:"modify_index,omitempty" yaml:"-"`
}

// ACLToken is an API credential. The cluster stores only a hash of its
// secret: SecretID is set once, in the answer to the request that created
// it.
type ACLToken struct {
	// AccessorID names the token in listings, logs and revocation; it is
	// not a credential.
	AccessorID string `json:"accessor_id"`
	// SecretID is what clients send (Authorization: Bearer ...).
	SecretID    string    `json:"secret_id,omitempty"`
	Description string    `json:"description,omitempty"`
	Policies    []string  `json:"policies,omitempty"`
	Management  bool      `json:"management,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	CreateTime  time.Time `json:"create_time"`
	CreateIndex uint64    `json:"create_index,omitempty"`
	// PolicyDetails are the token's policies in full, in the answer to
	// /v1/acl/token/self only (client agents authorize with them).
	PolicyDetails []ACLPolicy `json:"policy_details,omitempty"`
}

// ACLTokenRequest asks for a new API token.
type ACLTokenRequest struct {
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies,omitempty"`
	Management  bool     `json:"management,omitempty"`
	// TTL, a Go duration ("24h"); empty: the token does not expire.
	TTL string `json:"ttl,omitempty"`
}

// JoinToken lets a new node join the cluster: it is exchanged once for the
// node's certificate and the gossip key. Token (the whole credential) is
// set once, in the answer to the request that created it.
type JoinToken struct {
	ID          string    `json:"id"`
	Token       string    `json:"token,omitempty"`
	Role        string    `json:"role"`
	Description string    `json:"description,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	CreateTime  time.Time `json:"create_time"`
	CreateIndex uint64    `json:"create_index,omitempty"`
}

// JoinTokenRequest asks for a new join token.
type JoinTokenRequest struct {
	// Role is "client" (default) or "server".
	Role        string `json:"role,omitempty"`
	Description string `json:"description,omitempty"`
	// TTL, a Go duration; default 24h.
	TTL string `json:"ttl,omitempty"`
}

// JoinRequest is what a new node sends to /v1/join.
type JoinRequest struct {
	Token string `json:"token"`
	Name  string `json:"name"`
	// PublicKey is the node's own public key (PEM); its private key never
	// leaves the node.
	PublicKey string `json:"public_key"`
	// IPs are the node's advertise addresses, put in its certificate.
	IPs []string `json:"ips"`
}

// JoinResponse carries what a joining node needs, over a connection it
// has checked against the token's CA hash.
type JoinResponse struct {
	CACert string `json:"ca_cert"`
	Cert   string `json:"cert"`
	Role   string `json:"role"`
	// GossipKeys are the gossip encryption keys (base64), the primary
	// first.
	GossipKeys []string `json:"gossip_keys"`
	// ClusterSecret (base64) is given to servers only: it unseals the
	// CA key kept in the replicated state.
	ClusterSecret string `json:"cluster_secret,omitempty"`
}

// CertRequest asks for a fresh certificate for the calling node, which
// proves who it is with its current one.
type CertRequest struct {
	PublicKey string   `json:"public_key"`
	IPs       []string `json:"ips"`
}

// CertResponse is a renewed node certificate.
type CertResponse struct {
	Cert   string `json:"cert"`
	CACert string `json:"ca_cert"`
}

// Keyring is the gossip encryption keyring (base64 keys, primary first).
type Keyring struct {
	Keys  []string `json:"keys"`
	Index uint64   `json:"index"`
}
