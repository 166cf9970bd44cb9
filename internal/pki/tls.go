package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Certs holds this node's current certificate and the cluster CA pool.
// The certificate can be swapped at run time (Update, for rotation); every
// tls.Config built from Certs uses the current one for each new handshake,
// so a rotation drops no connection. Certs is safe for concurrent use; make
// one with NewCerts (the zero value is not usable).
type Certs struct {
	caPEM []byte
	pool  *x509.CertPool
	cur   atomic.Pointer[nodeCert]
}

// nodeCert is one verified certificate with its key.
type nodeCert struct {
	tls  *tls.Certificate // leaf, intermediates and the CA, with the key
	leaf *x509.Certificate
	name string
	role string
}

// NewCerts builds Certs from the CA bundle PEM (one or more CA
// certificates), this node's certificate PEM (the leaf first, then any
// intermediates) and its private key PEM. It checks that the certificate
// is a node certificate that chains to the CA now, for both TLS server and
// client authentication, and that the key matches it.
func NewCerts(caPEM, certPEM, keyPEM []byte) (*Certs, error) {
	cas, err := ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	for i, ca := range cas {
		if !ca.BasicConstraintsValid || !ca.IsCA {
			return nil, fmt.Errorf("loading CA bundle: certificate %d (%q) is not a CA certificate", i+1, ca.Subject.CommonName)
		}
		pool.AddCert(ca)
	}
	c := &Certs{caPEM: slices.Clone(caPEM), pool: pool}
	nc, err := c.load(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.cur.Store(nc)
	return c, nil
}

// Update swaps in a new certificate and key after the same checks as
// NewCerts. Handshakes that start afterwards use the new certificate;
// established connections are unaffected. On error the old certificate
// stays in use.
func (c *Certs) Update(certPEM, keyPEM []byte) error {
	nc, err := c.load(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("rotating certificate: %w", err)
	}
	c.cur.Store(nc)
	return nil
}

// load parses and checks a node certificate and key against the CA pool.
func (c *Certs) load(certPEM, keyPEM []byte) (*nodeCert, error) {
	chain, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("loading node certificate: %w", err)
	}
	leaf := chain[0]
	name, role, err := Identity(leaf)
	if err != nil {
		return nil, fmt.Errorf("loading node certificate: %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading key of node certificate %q: %w", name, err)
	}
	if !keysMatch(leaf.PublicKey, key) {
		return nil, fmt.Errorf("loading node certificate %q: private key does not match the certificate's public key", name)
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	var verified []*x509.Certificate
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		chains, err := leaf.Verify(x509.VerifyOptions{
			Roots:         c.pool,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			return nil, fmt.Errorf("verifying node certificate %q against the cluster CA: %w", name, err)
		}
		verified = chains[0]
	}
	// Present the leaf, its intermediates and the CA itself, so that a
	// joiner pinning the CA's hash sees the CA in the chain.
	der := make([][]byte, 0, len(verified))
	for _, cert := range verified {
		der = append(der, cert.Raw)
	}
	return &nodeCert{
		tls:  &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf},
		leaf: leaf,
		name: name,
		role: role,
	}, nil
}

// Leaf is the current node certificate.
func (c *Certs) Leaf() *x509.Certificate { return c.cur.Load().leaf }

// CAPEM is the CA bundle as given to NewCerts.
func (c *Certs) CAPEM() []byte { return slices.Clone(c.caPEM) }

// Pool is a copy of the CA pool.
func (c *Certs) Pool() *x509.CertPool { return c.pool.Clone() }

// Name is the node name of the current certificate.
func (c *Certs) Name() string { return c.cur.Load().name }

// Role is the role of the current certificate.
func (c *Certs) Role() string { return c.cur.Load().role }

// getCertificate returns the current certificate for a handshake.
func (c *Certs) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load().tls, nil
}

// getClientCertificate returns the current certificate for a handshake.
func (c *Certs) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.cur.Load().tls, nil
}

// NodeServerConfig is the config for node-to-node listeners: TLS 1.3 only,
// a client certificate required and verified against the CA pool, and the
// current certificate (with the CA appended to its chain) presented. The
// peer must hold a node certificate; if role is not empty, it must also
// carry that role.
func (c *Certs) NodeServerConfig(role string) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        c.pool,
		GetCertificate:   c.getCertificate,
		VerifyConnection: verifyPeerRole("client", role),
	}
}

// APIServerConfig is the config for the HTTPS API: TLS 1.2 and up, a
// client certificate verified against the CA pool if one is given (see
// PeerIdentity), the current certificate presented, and ALPN for HTTP/2
// and HTTP/1.1.
func (c *Certs) APIServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      c.pool,
		GetCertificate: c.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// ClientConfig is the config for dialing another node: TLS 1.3 only, or
// TLS 1.2 and up when forAPI is true (the API accepts 1.2). The peer's
// certificate is verified against the CA pool by the standard verifier,
// including its name: ServerName is left to the caller, or to the host
// tls.Dial derives from the dialed address, so the dialed IP must be an IP
// SAN of the peer. The current certificate is presented when the server
// asks for one. The peer must hold a node certificate; if role is not
// empty, it must also carry that role.
func (c *Certs) ClientConfig(role string, forAPI bool) *tls.Config {
	minVersion := uint16(tls.VersionTLS13)
	if forAPI {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		MinVersion:           minVersion,
		RootCAs:              c.pool,
		GetClientCertificate: c.getClientCertificate,
		VerifyConnection:     verifyPeerRole("server", role),
	}
}

// verifyPeerRole checks that a connection's verified peer holds a node
// certificate with role, or any role if role is empty. side names the peer
// in errors.
func verifyPeerRole(side, role string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		name, got, err := PeerIdentity(cs)
		if err != nil {
			return fmt.Errorf("refusing TLS %s: %w", side, err)
		}
		if role != "" && got != role {
			return fmt.Errorf("refusing TLS %s: peer %q has role %q, want %q", side, name, got, role)
		}
		return nil
	}
}

// PeerIdentity returns the name and role of the verified peer certificate
// of a connection. It is an error if the peer presented no certificate, if
// the certificate was not verified (as with JoinClientConfig) or if it is
// not a node certificate.
func PeerIdentity(cs tls.ConnectionState) (name, role string, err error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", "", errors.New("peer presented no verified certificate")
	}
	name, role, err = Identity(cs.VerifiedChains[0][0])
	if err != nil {
		return "", "", fmt.Errorf("peer certificate: %w", err)
	}
	return name, role, nil
}

// JoinClientConfig is the config for a node that has no certificate yet
// and knows only the CA pin from its join token. The standard verifier is
// off (InsecureSkipVerify); instead, some certificate in the presented
// chain must be a CA whose CertHash is caHash, and the leaf must verify
// against that CA for TLS server authentication at the current time. The
// dialed name is not checked: the pin is what the joiner trusts. TLS 1.2
// and up.
func JoinClientConfig(caHash string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified in VerifyConnection against the pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, caHash, time.Now())
		},
	}
}

// verifyPinned checks a presented chain against a CA pin.
func verifyPinned(chain []*x509.Certificate, caHash string, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("joining: the cluster presented no certificate")
	}
	var ca *x509.Certificate
	for _, cert := range chain {
		if cert.BasicConstraintsValid && cert.IsCA && CertHash(cert) == caHash {
			ca = cert
			break
		}
	}
	if ca == nil {
		return errors.New("joining: the cluster's CA does not match the token's CA hash")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, cert := range chain[1:] {
		if cert != ca {
			inter.AddCert(cert)
		}
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CurrentTime:   now,
	}); err != nil {
		return fmt.Errorf("joining: the cluster's certificate %q does not verify against the pinned CA: %w", leaf.Subject.CommonName, err)
	}
	return nil
}

// ExpiresSoon reports whether cert has passed the given fraction of its
// lifetime (NotBefore to NotAfter) at now; with fraction 2.0/3 it is true
// from two thirds of the way on. A fraction at or below 0 is always true,
// one at or above 1 is true from NotAfter on, and a nil certificate is
// always due.
func ExpiresSoon(cert *x509.Certificate, now time.Time, fraction float64) bool {
	if cert == nil || !(fraction > 0) {
		return true
	}
	if fraction >= 1 {
		return !now.Before(cert.NotAfter)
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	if life <= 0 {
		return true
	}
	due := cert.NotBefore.Add(time.Duration(float64(life) * fraction))
	return !now.Before(due)
}
