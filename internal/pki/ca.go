package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Roles carried in node certificates (Subject OU).
const (
	// RoleServer is a full cluster member: it votes in Raft and serves
	// peers and the API.
	RoleServer = "server"
	// RoleClient is an agent that only dials servers.
	RoleClient = "client"
)

// maxNameLen bounds a node name.
const maxNameLen = 128

// clockSkew is how far before "now" certificates start to be valid, so a
// peer whose clock is a little behind accepts them at once.
const clockSkew = time.Minute

// hashPrefix starts every public-key pin.
const hashPrefix = "sha256:"

// CA is the cluster certificate authority.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// CertPEM is Cert, PEM-encoded.
	CertPEM []byte
	// Key is the CA's private key.
	Key crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 CA named commonName (Subject CN,
// with O "herd") and valid from a minute ago until validity from now. The
// CA may sign only leaf certificates (MaxPathLenZero).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("creating CA: common name is empty")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("creating CA: validity must be positive, got %s", validity)
	}
	key, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("creating CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("creating CA: %w", err)
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("creating CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"herd"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: encodeCert(der), Key: key}, nil
}

// LoadCA parses a PEM CA certificate and its PEM private key (PKCS#8, SEC 1
// EC or PKCS#1 RSA). It checks that the certificate is a CA allowed to sign
// certificates and that the key belongs to it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA certificate: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("loading CA certificate: PEM holds %d certificates, want exactly 1", len(certs))
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("loading CA certificate: %q is not a CA certificate (basic constraints CA:FALSE or missing)", cert.Subject.CommonName)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("loading CA certificate: %q may not sign certificates (key usage lacks certSign)", cert.Subject.CommonName)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA key: %w", err)
	}
	if !keysMatch(cert.PublicKey, key) {
		return nil, fmt.Errorf("loading CA: private key does not match the public key of CA certificate %q", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, CertPEM: encodeCert(cert.Raw), Key: key}, nil
}

// KeyPEM returns the CA private key as PKCS#8 PEM.
func (ca *CA) KeyPEM() ([]byte, error) {
	if ca == nil {
		return nil, errors.New("CA is nil")
	}
	out, err := MarshalKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("encoding CA key: %w", err)
	}
	return out, nil
}

// Hash is the CA's public-key pin: "sha256:" and the lowercase hex SHA-256
// of the certificate's SubjectPublicKeyInfo (as kubeadm's discovery hash).
// It is empty for a nil CA.
func (ca *CA) Hash() string {
	if ca == nil {
		return ""
	}
	return CertHash(ca.Cert)
}

// CertHash is the public-key pin of any certificate, in the form of
// CA.Hash. It is empty for a nil certificate.
func CertHash(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NodeRequest asks the CA for a node certificate.
type NodeRequest struct {
	// Name is the node name: the Subject CN and the first DNS SAN. It is
	// 1 to 128 characters from [A-Za-z0-9._-].
	Name string
	// Role is RoleServer or RoleClient, carried as the Subject OU.
	Role string
	// IPs are the IP SANs: the node's advertise addresses. 127.0.0.1 is
	// included only if given.
	IPs []net.IP
	// DNSNames are extra DNS SANs.
	DNSNames []string
	// PublicKey is the node's own key (ECDSA P-256 or Ed25519); its
	// private key never leaves the node.
	PublicKey crypto.PublicKey
	// TTL is the certificate's lifetime, capped at the CA's own NotAfter.
	TTL time.Duration
}

// Issue signs a node certificate for req and returns it PEM-encoded. The
// certificate is valid for both TLS server and client authentication, from
// a minute ago until req.TTL from now or the CA's expiry, whichever comes
// first.
func (ca *CA) Issue(req NodeRequest) ([]byte, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("issuing certificate: CA is not loaded")
	}
	if err := checkName(req.Name); err != nil {
		return nil, fmt.Errorf("issuing certificate: %w", err)
	}
	if !knownRole(req.Role) {
		return nil, fmt.Errorf("issuing certificate for %q: unknown role %q (want %q or %q)", req.Name, req.Role, RoleServer, RoleClient)
	}
	if err := checkNodeKey(req.PublicKey); err != nil {
		return nil, fmt.Errorf("issuing certificate for %q: %w", req.Name, err)
	}
	if req.TTL <= 0 {
		return nil, fmt.Errorf("issuing certificate for %q: TTL must be positive, got %s", req.Name, req.TTL)
	}
	dnsNames := []string{req.Name}
	for _, d := range req.DNSNames {
		if d == "" {
			return nil, fmt.Errorf("issuing certificate for %q: empty DNS name", req.Name)
		}
		if !slices.Contains(dnsNames, d) {
			dnsNames = append(dnsNames, d)
		}
	}
	ips := make([]net.IP, 0, len(req.IPs))
	for i, ip := range req.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, fmt.Errorf("issuing certificate for %q: IP address %d is invalid", req.Name, i+1)
		}
		ips = append(ips, slices.Clone(ip))
	}

	now := time.Now()
	notAfter := now.Add(req.TTL)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("issuing certificate for %q: the CA expired at %s", req.Name, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issuing certificate for %q: %w", req.Name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         req.Name,
			OrganizationalUnit: []string{req.Role},
			Organization:       []string{"herd"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issuing certificate for %q: %w", req.Name, err)
	}
	return encodeCert(der), nil
}

// Identity reads a node certificate's name (Subject CN) and role (the
// first Subject OU that is a known role). It is an error if cert is not a
// node certificate: a CA, a certificate with an invalid name, or one
// without a role.
func Identity(cert *x509.Certificate) (name, role string, err error) {
	if cert == nil {
		return "", "", errors.New("not a node certificate: certificate is nil")
	}
	cn := cert.Subject.CommonName
	if cert.IsCA {
		return "", "", fmt.Errorf("%q is a CA certificate, not a node certificate", cn)
	}
	if err := checkName(cn); err != nil {
		return "", "", fmt.Errorf("not a node certificate: %w", err)
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if knownRole(ou) {
			return cn, ou, nil
		}
	}
	return "", "", fmt.Errorf("certificate %q is not a node certificate: no %q or %q role in its Subject OU", cn, RoleServer, RoleClient)
}

// knownRole reports whether role is one of the node roles.
func knownRole(role string) bool {
	return role == RoleServer || role == RoleClient
}

// checkName validates a node name.
func checkName(name string) error {
	if name == "" {
		return errors.New("node name is empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("node name is %d characters long, at most %d allowed", len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("node name %q has a character outside [A-Za-z0-9._-] at byte %d", name, i)
		}
	}
	return nil
}

// newSerial returns a random, positive 128-bit certificate serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID derives a Subject Key Identifier from a public key as RFC
// 7093 section 2 method 1: the leftmost 160 bits of the SHA-256 of the
// subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("computing subject key ID: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("computing subject key ID: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}
