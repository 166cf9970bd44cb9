package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/server"
)

// nodeSecurity is this agent's credentials: its certificate (and the CA
// pool), the gossip keys, and on servers the cluster secret. The agent
// keeps them in the "tls" directory of its data dir.
type nodeSecurity struct {
	dir   string
	certs *pki.Certs
	// mu guards keys once the agent runs (the keyring loop replaces them).
	mu   sync.Mutex
	keys [][]byte
	// secret unseals what the state keeps sealed; servers only, and not
	// with the operator's own CA.
	secret []byte
	// byo: the operator's own CA; herd issues and renews nothing.
	byo bool
	// init is the CA this agent created for a new cluster (nil
	// otherwise), to be recorded in the state by the first leader.
	init *pki.CA
	// created: this start created the cluster (init is also set on the
	// restarts of the server that created it).
	created bool
}

// Files of the tls directory.
const (
	fileCA       = "ca.pem"
	fileCert     = "node.pem"
	fileKey      = "node-key.pem"
	fileKeys     = "gossip-keys.json"
	fileSecret   = "cluster.secret"
	fileInitCA   = "ca-key.sealed"
	fileDevToken = "dev-management-token"
	tlsDirectory = "tls"
)

// setupSecurity loads this agent's credentials, or obtains them: with the
// operator's own CA from the configured files, on a first start with a
// join token from the agent at a join address, and on the first server of
// a new cluster by creating the cluster CA. It returns nil when security
// is disabled. ips are the addresses put in a new certificate. ctx bounds
// the wait for a token file.
func setupSecurity(ctx context.Context, cfg config.Config, dataDir string, ips []net.IP, logger *slog.Logger) (*nodeSecurity, error) {
	sc := cfg.Security
	if sc.Disabled {
		return nil, nil
	}
	role := pki.RoleClient
	if cfg.Server {
		role = pki.RoleServer
	}
	if sc.BringYourOwnCA() {
		return loadOwnCA(sc, role)
	}
	dir := filepath.Join(dataDir, tlsDirectory)
	if _, err := os.Stat(filepath.Join(dir, fileCert)); err == nil {
		return loadSecurity(dir, role)
	}
	if sc.Token != "" || sc.TokenFile != "" {
		field := "security.token"
		if sc.TokenFile != "" {
			field = "security.token_file"
		}
		addrs := append(append([]string{}, cfg.Join...), cfg.RetryJoin...)
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s: a join token needs a join address (--join or --retry-join: the API address of a cluster member)", field)
		}
		token := sc.Token
		if sc.TokenFile != "" {
			var err error
			if token, err = readTokenFile(ctx, sc.TokenFile, logger); err != nil {
				return nil, err
			}
		}
		return joinWithToken(ctx, cfg, token, field, dir, role, addrs, ips)
	}
	if !cfg.Server || len(cfg.Join) > 0 || len(cfg.RetryJoin) > 0 {
		return nil, errors.New("this node holds no certificate for the cluster: to join one, pass a join token (--token, from `herd token create` on a member, or --token-file); " +
			"a server started without join addresses creates a new cluster instead; security.disabled turns all of this off")
	}
	if cfg.BootstrapExpect > 1 {
		return nil, fmt.Errorf("bootstrap_expect %d: a new secure cluster starts from one server, which creates the cluster CA; start it alone and join the others with `herd token create --role server` (or bring your own CA: security.ca_file, with which servers bootstrap together)", cfg.BootstrapExpect)
	}
	return initCluster(cfg.NodeName, dir, ips, cfg.Security.CertTTL.D(), sc.BootstrapDir != "")
}

// initCluster creates the CA, the cluster secret, the gossip key and this
// server's certificate for a new cluster. With bootstrapDir it first marks
// the bootstrap files as due (see writeBootstrapFiles), so that a crash
// before they are written leaves the restart to write them.
func initCluster(name, dir string, ips []net.IP, ttl time.Duration, bootstrapDir bool) (*nodeSecurity, error) {
	ca, err := pki.NewCA("herd cluster CA", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	secret, err := pki.NewSecret()
	if err != nil {
		return nil, err
	}
	gossipKey, err := pki.NewSecret()
	if err != nil {
		return nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	certPEM, err := ca.Issue(pki.NodeRequest{Name: name, Role: pki.RoleServer, IPs: ips, PublicKey: key.Public(), TTL: ttl})
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalKey(key)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	sealedCA, err := pki.Seal(secret, caKey, "herd init ca key")
	if err != nil {
		return nil, err
	}
	s := &nodeSecurity{dir: dir, keys: [][]byte{gossipKey}, secret: secret, init: ca, created: true}
	if s.certs, err = pki.NewCerts(ca.CertPEM, certPEM, keyPEM); err != nil {
		return nil, err
	}
	if bootstrapDir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := writeFileAtomic(filepath.Join(dir, fileBootstrapDue), nil); err != nil {
			return nil, err
		}
	}
	// The sealed CA key stays here until the state holds it, so that a
	// crash before the first leader records it loses nothing.
	if err := s.save(map[string][]byte{fileInitCA: sealedCA, fileCA: ca.CertPEM, fileCert: certPEM, fileKey: keyPEM}); err != nil {
		return nil, err
	}
	return s, nil
}

// joinWithToken exchanges the join token for this node's certificate and
// the gossip keys at the first join address that answers, retrying for up
// to a minute. field names where the token came from, for errors.
func joinWithToken(ctx context.Context, cfg config.Config, token, field, dir, role string, addrs []string, ips []net.IP) (*nodeSecurity, error) {
	tok, err := pki.ParseJoinToken(token)
	if err != nil {
		if field == "security.token_file" {
			return nil, fmt.Errorf("%s %s: %w", field, cfg.Security.TokenFile, err)
		}
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	pub, err := pki.MarshalPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	req := &api.JoinRequest{Token: tok.String(), Name: cfg.NodeName, PublicKey: string(pub)}
	for _, ip := range ips {
		req.IPs = append(req.IPs, ip.String())
	}
	var resp *api.JoinResponse
	deadline := time.Now().Add(time.Minute)
	wait := cfg.RetryInterval.D()
	for {
		resp, err = joinOnce(req, tok.CAHash, withAPIPort(addrs))
		if err == nil || time.Now().After(deadline) || permanentJoinError(err) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("joining with the token: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, cfg.RetryMaxInterval.D())
	}
	if err != nil {
		return nil, fmt.Errorf("joining with the token: %w", err)
	}
	if resp.Role != role {
		return nil, fmt.Errorf("joining with the token: it is a %s token and this agent is a %s; create one with `herd token create --role %s`", resp.Role, role, role)
	}
	keyPEM, err := pki.MarshalKey(key)
	if err != nil {
		return nil, err
	}
	s := &nodeSecurity{dir: dir}
	if s.certs, err = pki.NewCerts([]byte(resp.CACert), []byte(resp.Cert), keyPEM); err != nil {
		return nil, fmt.Errorf("the cluster's answer to the join: %w", err)
	}
	for _, k := range resp.GossipKeys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("the cluster's answer to the join: a gossip key is not base64")
		}
		s.keys = append(s.keys, b)
	}
	files := map[string][]byte{fileCA: []byte(resp.CACert), fileCert: []byte(resp.Cert), fileKey: keyPEM}
	if resp.ClusterSecret != "" {
		if s.secret, err = base64.StdEncoding.DecodeString(resp.ClusterSecret); err != nil {
			return nil, fmt.Errorf("the cluster's answer to the join: the cluster secret is not base64")
		}
	}
	if err := s.save(files); err != nil {
		return nil, err
	}
	return s, nil
}

// permanentJoinError tells a refused token (retrying will not help) from
// an agent that could not be reached.
func permanentJoinError(err error) bool {
	var se *api.StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 || strings.Contains(err.Error(), "CA hash")
}

// joinOnce tries each address in turn.
func joinOnce(req *api.JoinRequest, caHash string, addrs []string) (*api.JoinResponse, error) {
	var errs []error
	for _, addr := range addrs {
		c, err := api.NewClientConfig(api.Config{Address: "https://" + addr, TLSConfig: pki.JoinClientConfig(caHash), IgnoreEnv: true})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.Join(ctx, req)
		cancel()
		c.Close()
		if err == nil {
			return resp, nil
		}
		if permanentJoinError(err) {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, errors.Join(errs...)
}

// withAPIPort adds the default API port to addresses without one.
func withAPIPort(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(config.DefaultHTTPPort))
		}
		out[i] = a
	}
	return out
}

// loadSecurity reads the credentials an earlier start saved.
func loadSecurity(dir, role string) (*nodeSecurity, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading this node's credentials: %w", err)
		}
		return b, nil
	}
	s := &nodeSecurity{dir: dir}
	files := map[string][]byte{}
	for _, name := range []string{fileCA, fileCert, fileKey, fileKeys} {
		b, err := read(name)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	var err error
	if s.certs, err = pki.NewCerts(files[fileCA], files[fileCert], files[fileKey]); err != nil {
		return nil, fmt.Errorf("this node's credentials in %s: %w", dir, err)
	}
	if s.certs.Role() != role {
		return nil, fmt.Errorf("this node's certificate (in %s) is for a %s, and this agent is configured as a %s", dir, s.certs.Role(), role)
	}
	if !time.Now().Before(s.certs.Leaf().NotAfter) {
		return nil, fmt.Errorf("this node's certificate expired at %s while the agent was down: move %s aside and join again with a new token", s.certs.Leaf().NotAfter.Format(time.RFC3339), dir)
	}
	var enc []string
	if err := json.Unmarshal(files[fileKeys], &enc); err != nil {
		return nil, fmt.Errorf("reading the gossip keys in %s: %w", dir, err)
	}
	for _, e := range enc {
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("reading the gossip keys in %s: not base64", dir)
		}
		s.keys = append(s.keys, k)
	}
	if role == pki.RoleServer {
		b, err := read(fileSecret)
		if err != nil {
			return nil, err
		}
		if s.secret, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err != nil || len(s.secret) != 32 {
			return nil, fmt.Errorf("the cluster secret in %s is not 32 bytes of base64", dir)
		}
		if sealed, err := os.ReadFile(filepath.Join(dir, fileInitCA)); err == nil {
			keyPEM, err := pki.Open(s.secret, sealed, "herd init ca key")
			if err != nil {
				return nil, fmt.Errorf("the CA key this server created: %w", err)
			}
			if s.init, err = pki.LoadCA(files[fileCA], keyPEM); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// loadOwnCA reads the operator's CA and this node's certificate.
func loadOwnCA(sc config.Security, role string) (*nodeSecurity, error) {
	var files [3][]byte
	for i, p := range []string{sc.CAFile, sc.CertFile, sc.KeyFile} {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("security: %w", err)
		}
		files[i] = b
	}
	certs, err := pki.NewCerts(files[0], files[1], files[2])
	if err != nil {
		return nil, fmt.Errorf("security.cert_file %s: %w", sc.CertFile, err)
	}
	if certs.Role() != role {
		return nil, fmt.Errorf("security.cert_file %s: the certificate's role (OU) is %q and this agent is a %s", sc.CertFile, certs.Role(), role)
	}
	key, _ := base64.StdEncoding.DecodeString(sc.GossipKey)
	return &nodeSecurity{certs: certs, keys: [][]byte{key}, byo: true}, nil
}

// save writes the given files plus the gossip keys and the cluster secret
// into the tls directory, each readable by this user only.
func (s *nodeSecurity) save(files map[string][]byte) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", s.dir, err)
	}
	if err := s.saveKeys(); err != nil {
		return err
	}
	if s.secret != nil {
		files[fileSecret] = []byte(base64.StdEncoding.EncodeToString(s.secret) + "\n")
	}
	for name, data := range files {
		if err := writeFileAtomic(filepath.Join(s.dir, name), data); err != nil {
			return err
		}
	}
	return nil
}

// saveKeys persists the gossip keys (primary first).
func (s *nodeSecurity) saveKeys() error {
	if s.dir == "" {
		return nil
	}
	enc := make([]string, len(s.keys))
	for i, k := range s.keys {
		enc[i] = base64.StdEncoding.EncodeToString(k)
	}
	data, _ := json.Marshal(enc)
	return writeFileAtomic(filepath.Join(s.dir, fileKeys), data)
}

// writeFileAtomic writes data to path through a synced temporary file, so
// a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// serverSecurity is what the Raft server needs.
func (s *nodeSecurity) serverSecurity(ttl time.Duration) *server.Security {
	if s == nil {
		return nil
	}
	out := &server.Security{Certs: s.certs, Secret: s.secret, CertTTL: ttl, Init: s.init}
	if s.init != nil {
		out.InitKeys = s.keys
	}
	return out
}

// clientTLS is the TLS config this agent uses to call agents' APIs:
// TLS 1.3 with its certificate, to a peer holding a node certificate.
func (s *nodeSecurity) clientTLS() *tls.Config {
	if s == nil {
		return nil
	}
	return s.certs.ClientConfig("", false)
}

// gossipKeys are the keys gossip starts with; nil with security off.
func (s *nodeSecurity) gossipKeys() [][]byte {
	if s == nil {
		return nil
	}
	return s.keys
}

// apiClient is a client of the agent at addr's API as this node: with its
// certificate when the cluster is secured.
func (a *Agent) apiClient(addr string) (*api.Client, error) {
	if a.sec == nil {
		return api.NewClientConfig(api.Config{Address: "http://" + addr, IgnoreEnv: true})
	}
	return api.NewClientConfig(api.Config{Address: "https://" + addr, TLSConfig: a.sec.clientTLS(), IgnoreEnv: true})
}

// gossipAddrsOf asks the agents at the given API addresses for their
// gossip addresses.
func (a *Agent) gossipAddrsOf(ctx context.Context, addrs []string) ([]string, error) {
	var out []string
	var errs []error
	for _, addr := range withAPIPort(addrs) {
		c, err := a.apiClient(addr)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		self, err := c.Self(cctx)
		cancel()
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		out = append(out, self.GossipAddr)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no join address answered: %w", errors.Join(errs...))
	}
	return out, nil
}

// join joins the gossip pool through the agents at the given API
// addresses.
func (a *Agent) join(ctx context.Context, addrs []string) error {
	gossip, err := a.gossipAddrsOf(ctx, addrs)
	if err != nil {
		return err
	}
	_, err = a.gossip.Join(gossip)
	return err
}

// retryJoin is join retried with exponential back-off until it succeeds
// or ctx ends.
func (a *Agent) retryJoin(ctx context.Context, addrs []string) {
	wait := a.cfg.RetryInterval.D()
	for attempt := 1; ; attempt++ {
		err := a.join(ctx, addrs)
		if err == nil {
			a.logger.Info("joined cluster", "addresses", addrs, "attempt", attempt)
			return
		}
		a.logger.Warn("join failed, retrying", "addresses", addrs, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, a.cfg.RetryMaxInterval.D())
	}
}

// renewLoop renews this node's certificate at two thirds of its lifetime,
// from a server (itself, on a server), and swaps it in for new
// connections; open ones keep going.
func (a *Agent) renewLoop(ctx context.Context) {
	for {
		leaf := a.sec.certs.Leaf()
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		next := time.Until(leaf.NotBefore.Add(life * 2 / 3))
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(next, 0)):
		}
		if err := a.renewCert(ctx); err != nil {
			a.logger.Warn("renewing this node's certificate failed; retrying", "err", err, "expires", leaf.NotAfter)
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(max(time.Until(leaf.NotAfter)/10, 100*time.Millisecond), 30*time.Second)):
			}
		}
	}
}

// renewCert gets a fresh certificate (for a new key) from a live server.
func (a *Agent) renewCert(ctx context.Context) error {
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	pub, err := pki.MarshalPublicKey(key.Public())
	if err != nil {
		return err
	}
	keyPEM, err := pki.MarshalKey(key)
	if err != nil {
		return err
	}
	req := &api.CertRequest{PublicKey: string(pub), IPs: []string{a.advertise}}
	var errs []error
	for _, m := range a.gossip.Members() {
		if m.Role != "server" || m.Status != api.MemberAlive || m.APIAddr == "" {
			continue
		}
		c, err := a.apiClient(m.APIAddr)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.RenewCert(cctx, req)
		cancel()
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
			continue
		}
		if err := a.sec.certs.Update([]byte(resp.Cert), keyPEM); err != nil {
			return fmt.Errorf("the renewed certificate: %w", err)
		}
		if err := a.sec.save(map[string][]byte{fileCert: []byte(resp.Cert), fileKey: keyPEM}); err != nil {
			return err
		}
		a.logger.Info("node certificate renewed", "expires", a.sec.certs.Leaf().NotAfter.Format(time.RFC3339))
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no live server to renew with")
	}
	return errors.Join(errs...)
}

// keyringLoop installs the cluster's gossip keys whenever they change
// (after `herd operator keyring rotate`) and saves them.
func (a *Agent) keyringLoop(ctx context.Context) {
	c, err := a.apiClient(a.APIAddr())
	if err != nil {
		a.logger.Error("gossip keyring watch", "err", err)
		return
	}
	defer c.Close()
	var index uint64
	for {
		ring, err := c.Keyring(ctx, &api.QueryOptions{WaitIndex: index, WaitTime: time.Minute})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.logger.Debug("reading the gossip keyring", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if ring.Index == index {
			continue
		}
		index = ring.Index
		keys := make([][]byte, 0, len(ring.Keys))
		for _, k := range ring.Keys {
			b, err := base64.StdEncoding.DecodeString(k)
			if err == nil {
				keys = append(keys, b)
			}
		}
		if len(keys) == 0 || equalKeys(keys, a.sec.keys) {
			continue
		}
		if err := a.gossip.SetKeys(keys); err != nil {
			a.logger.Error("installing the gossip keys", "err", err)
			continue
		}
		a.sec.mu.Lock()
		a.sec.keys = keys
		a.sec.mu.Unlock()
		if err := a.sec.saveKeys(); err != nil {
			a.logger.Error("saving the gossip keys", "err", err)
		}
		a.logger.Info("gossip keyring updated", "keys", len(keys))
	}
}

func equalKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// Members is this agent's gossip view of the cluster.
func (a *Agent) Members() []api.Member { return a.gossip.Members() }

// DevToken bootstraps the ACLs of a dev agent's new cluster and returns
// the management token's secret; later calls return the same secret. It
// is for dev mode and tests: a real cluster's operator runs `herd acl
// bootstrap` and keeps the secret. A dev agent keeps the secret in its
// data dir (readable by this user only), so one restarted on a kept
// --data-dir prints it again.
func (a *Agent) DevToken(ctx context.Context) (string, error) {
	a.devMu.Lock()
	defer a.devMu.Unlock()
	if a.devToken != "" || a.sec == nil {
		return a.devToken, nil
	}
	keep := filepath.Join(a.sec.dir, fileDevToken)
	if b, err := os.ReadFile(keep); err == nil && a.cfg.Dev {
		a.devToken = strings.TrimSpace(string(b))
		return a.devToken, nil
	}
	secret, err := a.bootstrapACL(ctx)
	if err != nil {
		return "", fmt.Errorf("bootstrapping the dev cluster's ACLs: %w", err)
	}
	a.devToken = secret
	if a.cfg.Dev {
		if err := writeFileAtomic(keep, []byte(secret+"\n")); err != nil {
			return "", err
		}
	}
	return a.devToken, nil
}

// bootstrapACL makes the cluster's first management token through this
// agent's API and returns its secret, retrying while the cluster has no
// leader. It fails at once if the ACLs are bootstrapped already (HTTP
// 409) or the API refuses otherwise.
func (a *Agent) bootstrapACL(ctx context.Context) (string, error) {
	c, err := a.apiClient(a.APIAddr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	for {
		t, err := c.ACLBootstrap(ctx)
		if err == nil {
			return t.SecretID, nil
		}
		var se *api.StatusError
		if errors.As(err, &se) && se.Code < 500 || ctx.Err() != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Certificate is this node's current certificate (nil with security off).
func (a *Agent) Certificate() *x509.Certificate {
	if a.sec == nil {
		return nil
	}
	return a.sec.certs.Leaf()
}

// GossipKeys are the gossip keys this agent has installed, the primary
// first (nil with security off). Used by tests.
func (a *Agent) GossipKeys() [][]byte {
	if a.sec == nil {
		return nil
	}
	a.sec.mu.Lock()
	defer a.sec.mu.Unlock()
	return slices.Clone(a.sec.keys)
}

// ownCALoop re-reads the operator's certificate and key files when they
// change (checked every 2 s) and swaps them in for new handshakes.
func (a *Agent) ownCALoop(ctx context.Context) {
	sc := a.cfg.Security
	stamp := func() string {
		var b strings.Builder
		for _, p := range []string{sc.CertFile, sc.KeyFile} {
			if fi, err := os.Stat(p); err == nil {
				fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
			}
		}
		return b.String()
	}
	last := stamp()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stamp()
		if now == last {
			continue
		}
		certPEM, err1 := os.ReadFile(sc.CertFile)
		keyPEM, err2 := os.ReadFile(sc.KeyFile)
		if err := errors.Join(err1, err2); err != nil {
			a.logger.Warn("re-reading this node's certificate", "err", err)
			continue
		}
		if err := a.sec.certs.Update(certPEM, keyPEM); err != nil {
			// Half-written files show up here; the next tick tries again.
			a.logger.Warn("this node's new certificate is not usable yet; keeping the old one", "err", err)
			continue
		}
		last = now
		a.logger.Info("node certificate reloaded", "file", sc.CertFile, "expires", a.sec.certs.Leaf().NotAfter.Format(time.RFC3339))
	}
}
