package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/state"
)

// Security is what a server needs when the cluster is secured: its node
// certificate for Raft and for reaching other servers, and the means to
// run the cluster CA. A nil *Security runs the server in plaintext.
type Security struct {
	// Certs is this node's certificate and the cluster CA pool.
	Certs *pki.Certs
	// Secret unseals the CA key and the gossip keyring kept in the
	// replicated state; nil when the operator keeps the CA key.
	Secret []byte
	// CertTTL is the lifetime of the certificates this server issues.
	CertTTL time.Duration
	// Init is the CA this server created for a new cluster, with the
	// gossip keys (primary first); the first leader records both in the
	// state. Nil on every other server.
	Init     *pki.CA
	InitKeys [][]byte
}

// Labels bind sealed blobs to their purpose.
const (
	sealCAKey   = "herd ca key"
	sealKeyring = "herd gossip keyring"
)

// Errors of the security operations, mapped to HTTP statuses by the API.
var (
	// ErrJoinRefused: the join token is unknown, revoked, expired, for
	// another cluster, or its secret is wrong. Which of these is logged
	// on the server, never told to the caller.
	ErrJoinRefused = errors.New("join token refused: it is unknown, revoked, expired, or not for this cluster")
	// ErrNoCA: this cluster does not run its own CA (security is off, or
	// the operator keeps the CA key), so herd issues no certificates.
	ErrNoCA = errors.New("this cluster does not issue certificates: security is off or the operator brings their own CA")
	// ErrNameTaken: a joining node asked for the name of a live member.
	ErrNameTaken = errors.New("node name taken")
)

// recordPKI writes the CA and gossip keys this server created into the
// state, once, when it first leads a new cluster.
func (s *Server) recordPKI(ctx context.Context) error {
	sec := s.cfg.Security
	if sec == nil || sec.Init == nil {
		return nil
	}
	if _, p, err := s.store.PKI(nil); err != nil || p != nil {
		return err
	}
	keyPEM, err := sec.Init.KeyPEM()
	if err != nil {
		return err
	}
	sealedKey, err := pki.Seal(sec.Secret, keyPEM, sealCAKey)
	if err != nil {
		return err
	}
	sealedRing, err := sealKeys(sec.Secret, sec.InitKeys)
	if err != nil {
		return err
	}
	res, err := s.ApplyLocal(ctx, &Command{Op: OpPKIInit, PKI: &state.PKI{
		CACert: string(sec.Init.CertPEM), CAHash: sec.Init.Hash(), CAKey: sealedKey, Keyring: sealedRing,
	}})
	if err != nil {
		return fmt.Errorf("recording the cluster CA: %w", err)
	}
	if res.Error != "" {
		return fmt.Errorf("recording the cluster CA: %s", res.Error)
	}
	s.logger.Info("cluster CA recorded in the replicated state", "ca_hash", sec.Init.Hash())
	return nil
}

func sealKeys(secret []byte, keys [][]byte) ([]byte, error) {
	enc := make([]string, len(keys))
	for i, k := range keys {
		enc[i] = base64.StdEncoding.EncodeToString(k)
	}
	data, err := json.Marshal(enc)
	if err != nil {
		return nil, err
	}
	return pki.Seal(secret, data, sealKeyring)
}

func openKeys(secret, sealed []byte) ([][]byte, error) {
	data, err := pki.Open(secret, sealed, sealKeyring)
	if err != nil {
		return nil, fmt.Errorf("unsealing the gossip keyring: %w", err)
	}
	var enc []string
	if err := json.Unmarshal(data, &enc); err != nil {
		return nil, fmt.Errorf("decoding the gossip keyring: %w", err)
	}
	keys := make([][]byte, len(enc))
	for i, e := range enc {
		if keys[i], err = base64.StdEncoding.DecodeString(e); err != nil {
			return nil, fmt.Errorf("decoding the gossip keyring: %w", err)
		}
	}
	return keys, nil
}

// clusterCA returns the CA with its unsealed key, read from this server's
// (consistent) state.
func (s *Server) clusterCA(ctx context.Context) (*pki.CA, *state.PKI, error) {
	sec := s.cfg.Security
	if sec == nil || sec.Secret == nil {
		return nil, nil, ErrNoCA
	}
	if err := s.ConsistentRead(ctx); err != nil {
		return nil, nil, err
	}
	_, p, err := s.store.PKI(nil)
	if err != nil {
		return nil, nil, err
	}
	if p == nil || len(p.CAKey) == 0 {
		return nil, nil, ErrNoCA
	}
	keyPEM, err := pki.Open(sec.Secret, p.CAKey, sealCAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("unsealing the CA key (is this server's cluster secret the cluster's?): %w", err)
	}
	ca, err := pki.LoadCA([]byte(p.CACert), keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return ca, p, nil
}

// issue signs a certificate for a node.
func (s *Server) issue(ca *pki.CA, name, role, pubPEM string, ips []string) (string, error) {
	pub, err := pki.ParsePublicKey([]byte(pubPEM))
	if err != nil {
		return "", fmt.Errorf("public_key: %w", err)
	}
	req := pki.NodeRequest{Name: name, Role: role, PublicKey: pub, TTL: s.cfg.Security.CertTTL}
	for i, a := range ips {
		ip := net.ParseIP(a)
		if ip == nil {
			return "", fmt.Errorf("ips[%d]: %q is not an IP address", i, a)
		}
		req.IPs = append(req.IPs, ip)
	}
	cert, err := ca.Issue(req)
	if err != nil {
		return "", err
	}
	return string(cert), nil
}

// Join checks a join token and answers with what the new node needs: its
// certificate, the CA, the gossip keys, and (for a server token) the
// cluster secret. The answer travels over TLS that the joiner has pinned
// to the token's CA hash. Failures that concern the token all return
// ErrJoinRefused; the reason is logged here.
func (s *Server) Join(ctx context.Context, req api.JoinRequest) (*api.JoinResponse, error) {
	tok, err := pki.ParseJoinToken(req.Token)
	if err != nil {
		s.logger.Warn("join refused", "reason", "malformed token", "node", req.Name)
		return nil, ErrJoinRefused
	}
	ca, p, err := s.clusterCA(ctx)
	if err != nil {
		return nil, err
	}
	refuse := func(reason string) (*api.JoinResponse, error) {
		s.logger.Warn("join refused", "reason", reason, "token_id", tok.ID, "node", req.Name)
		return nil, ErrJoinRefused
	}
	if tok.CAHash != p.CAHash {
		return refuse("token is for another cluster's CA")
	}
	entry, err := s.store.JoinToken(tok.ID)
	if err != nil {
		return nil, err
	}
	if entry == nil {
		return refuse("unknown or revoked token")
	}
	if subtle.ConstantTimeCompare([]byte(entry.SecretHash), []byte(pki.HashSecret(tok.Secret))) != 1 {
		return refuse("wrong secret")
	}
	if !entry.ExpiresAt.IsZero() && !time.Now().Before(entry.ExpiresAt) {
		return refuse("expired token")
	}
	// A token holder may not take the name (and so the identity) of a
	// node that is up.
	if m, err := s.store.Member(req.Name); err == nil && m != nil && m.Status == api.MemberAlive {
		return nil, fmt.Errorf("node name %q is in use by a live member: %w", req.Name, ErrNameTaken)
	}
	cert, err := s.issue(ca, req.Name, entry.Role, req.PublicKey, req.IPs)
	if err != nil {
		return nil, &BadRequestError{Err: err}
	}
	keys, err := openKeys(s.cfg.Security.Secret, p.Keyring)
	if err != nil {
		return nil, err
	}
	out := &api.JoinResponse{CACert: p.CACert, Cert: cert, Role: entry.Role}
	for _, k := range keys {
		out.GossipKeys = append(out.GossipKeys, base64.StdEncoding.EncodeToString(k))
	}
	if entry.Role == pki.RoleServer {
		out.ClusterSecret = base64.StdEncoding.EncodeToString(s.cfg.Security.Secret)
	}
	s.logger.Info("node joined with a token", "node", req.Name, "role", entry.Role, "token_id", tok.ID)
	return out, nil
}

// BadRequestError marks an error in what the caller sent.
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// RenewCert issues a fresh certificate to a node that proved its identity
// (name and role) with its current, still valid one.
func (s *Server) RenewCert(ctx context.Context, name, role string, req api.CertRequest) (*api.CertResponse, error) {
	ca, p, err := s.clusterCA(ctx)
	if err != nil {
		return nil, err
	}
	cert, err := s.issue(ca, name, role, req.PublicKey, req.IPs)
	if err != nil {
		return nil, &BadRequestError{Err: err}
	}
	return &api.CertResponse{Cert: cert, CACert: p.CACert}, nil
}

// CreateJoinToken makes a join token for role that expires after ttl.
func (s *Server) CreateJoinToken(ctx context.Context, role, description string, ttl time.Duration) (*api.JoinToken, error) {
	if _, _, err := s.clusterCA(ctx); err != nil {
		return nil, err
	}
	_, p, err := s.store.PKI(nil)
	if err != nil {
		return nil, err
	}
	tok, err := pki.NewJoinToken(p.CAHash)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	entry := &state.JoinTokenEntry{
		JoinToken: api.JoinToken{
			ID: tok.ID, Role: role, Description: description, CreateTime: now, ExpiresAt: now.Add(ttl),
		},
		SecretHash: pki.HashSecret(tok.Secret),
	}
	res, err := s.Apply(ctx, &Command{Op: OpJoinTokenSet, JoinToken: entry})
	if err := resultErr(res, err); err != nil {
		return nil, err
	}
	out := entry.JoinToken
	out.CreateIndex = res.Index
	out.Token = tok.String()
	return &out, nil
}

// resultErr turns a failed Result into an error of its kind.
func resultErr(res *Result, err error) error {
	switch {
	case err != nil:
		return err
	case res.Error == "":
		return nil
	case res.Kind == KindNotFound:
		return fmt.Errorf("%s: %w", res.Error, state.ErrNotFound)
	case res.Kind == KindConflict:
		return fmt.Errorf("%s: %w", res.Error, state.ErrExists)
	}
	return &BadRequestError{Err: errors.New(res.Error)}
}

// GossipKeyring returns the cluster's gossip keys (primary first) and the
// index they last changed at, watching for changes when ws is set.
func (s *Server) GossipKeyring(ws memdb.WatchSet) (uint64, [][]byte, error) {
	sec := s.cfg.Security
	if sec == nil || sec.Secret == nil {
		return 0, nil, ErrNoCA
	}
	_, p, err := s.store.PKI(ws)
	if err != nil {
		return 0, nil, err
	}
	if p == nil {
		return 0, nil, ErrNoCA
	}
	keys, err := openKeys(sec.Secret, p.Keyring)
	return p.KeyringIndex, keys, err
}

// RotateKeyring makes a new primary gossip key and keeps the previous
// primary, so that members still sending with it are understood until
// they switch; older keys are dropped.
func (s *Server) RotateKeyring(ctx context.Context) (uint64, error) {
	if err := s.ConsistentRead(ctx); err != nil {
		return 0, err
	}
	_, keys, err := s.GossipKeyring(nil)
	if err != nil {
		return 0, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return 0, err
	}
	next := [][]byte{k}
	if len(keys) > 0 {
		next = append(next, keys[0])
	}
	sealed, err := sealKeys(s.cfg.Security.Secret, next)
	if err != nil {
		return 0, err
	}
	res, err := s.Apply(ctx, &Command{Op: OpKeyringSet, Sealed: sealed})
	if err := resultErr(res, err); err != nil {
		return 0, err
	}
	return res.Index, nil
}

// checkPolicy validates a policy where it is applied.
func checkPolicy(p *api.ACLPolicy) error {
	if p == nil {
		return errors.New("acl.policy.set without a policy")
	}
	return acl.FromAPI(*p).Validate()
}
