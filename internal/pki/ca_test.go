package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	before := time.Now()
	ca, err := NewCA("herd cluster CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if c.Subject.CommonName != "herd cluster CA" || !slices.Equal(c.Subject.Organization, []string{"herd"}) {
		t.Errorf("subject = %v", c.Subject)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	wantKU := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if c.KeyUsage != wantKU {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, wantKU)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("SubjectKeyId is empty")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
	}
	if d := before.Add(-time.Minute).Sub(c.NotBefore); d < -time.Second || d > time.Second {
		t.Errorf("NotBefore = %v, want about a minute before %v", c.NotBefore, before)
	}
	if d := before.Add(48 * time.Hour).Sub(c.NotAfter); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("NotAfter = %v, want about 48h after %v", c.NotAfter, before)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA certificate is not self-signed: %v", err)
	}
	if certs, err := ParseCerts(ca.CertPEM); err != nil || !certs[0].Equal(c) {
		t.Errorf("CertPEM does not hold Cert: %v", err)
	}

	other := newTestCA(t, "herd cluster CA")
	if other.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs got the same serial")
	}
	if other.Hash() == ca.Hash() {
		t.Error("two CAs got the same hash")
	}

	for _, tc := range []struct {
		name     string
		validity time.Duration
		want     string
	}{
		{"", time.Hour, "common name is empty"},
		{"x", 0, "validity must be positive"},
		{"x", -time.Hour, "validity must be positive"},
	} {
		if _, err := NewCA(tc.name, tc.validity); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCA(%q, %v) error = %v, want %q", tc.name, tc.validity, err, tc.want)
		}
	}
}

func TestCAHash(t *testing.T) {
	ca := newTestCA(t, "ca")
	h := ca.Hash()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(h) {
		t.Fatalf("Hash() = %q, want sha256:<64 lowercase hex>", h)
	}
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	if want := "sha256:" + hex.EncodeToString(sum[:]); h != want {
		t.Errorf("Hash() = %q, want %q", h, want)
	}
	if CertHash(ca.Cert) != h {
		t.Error("CertHash(ca.Cert) differs from ca.Hash()")
	}
	if CertHash(nil) != "" || (*CA)(nil).Hash() != "" {
		t.Error("nil hashes should be empty")
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	ca := newTestCA(t, "ca")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("KeyPEM is not a PKCS#8 PRIVATE KEY block: %q", keyPEM)
	}
	loaded, err := LoadCA(ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || loaded.Hash() != ca.Hash() || !bytes.Equal(loaded.CertPEM, ca.CertPEM) {
		t.Error("loaded CA differs from the original")
	}
	if !keysMatch(ca.Cert.PublicKey, loaded.Key) {
		t.Error("loaded key does not match")
	}
	// The loaded CA can issue certificates that verify against the original.
	n := newNode(t, loaded, "n1", RoleServer)
	if _, err := n.certs.Leaf().Verify(x509.VerifyOptions{Roots: n.certs.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("certificate from loaded CA does not verify: %v", err)
	}

	// A SEC 1 "EC PRIVATE KEY" block is accepted too.
	ecDER, err := x509.MarshalECPrivateKey(ca.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})); err != nil {
		t.Errorf("LoadCA with EC PRIVATE KEY: %v", err)
	}
}

func TestLoadCARSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rsa ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadCA with a PKCS#1 RSA key: %v", err)
	}
	n := newNode(t, ca, "rsa-signed", RoleClient)
	if n.certs.Leaf().SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("signature algorithm = %v, want SHA256-RSA", n.certs.Leaf().SignatureAlgorithm)
	}
}

func TestLoadCARejects(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	keyPEM, _ := ca.KeyPEM()
	otherKeyPEM, _ := other.KeyPEM()
	n := newNode(t, ca, "leaf", RoleServer)

	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"non-CA certificate", n.certPEM, n.keyPEM, `"leaf" is not a CA certificate`},
		{"mismatched key", ca.CertPEM, otherKeyPEM, "private key does not match"},
		{"no certificate", nil, keyPEM, "no \"CERTIFICATE\" PEM block"},
		{"two certificates", append(slices.Clone(ca.CertPEM), other.CertPEM...), keyPEM, "holds 2 certificates"},
		{"no key", ca.CertPEM, nil, "no PEM data"},
		{"garbage key", ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")}), "parsing PRIVATE KEY block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loaded, err := LoadCA(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadCA error = %v, want one containing %q", err, tc.want)
			}
			if loaded != nil {
				t.Error("LoadCA returned a CA with its error")
			}
		})
	}

	// A CA certificate whose key usage forbids signing certificates.
	key, _ := NewKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "no-sign"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := MarshalKey(key)
	if _, err := LoadCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp); err == nil || !strings.Contains(err.Error(), "may not sign certificates") {
		t.Errorf("LoadCA of a CA without certSign: error = %v", err)
	}
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t, "ca")
	key, _ := NewKey()
	before := time.Now()
	certPEM, err := ca.Issue(NodeRequest{
		Name:      "node-1.example",
		Role:      RoleServer,
		IPs:       []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")},
		DNSNames:  []string{"api.herd.internal", "node-1.example"},
		PublicKey: key.Public(),
		TTL:       2 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCerts(certPEM)
	if err != nil || len(certs) != 1 {
		t.Fatalf("ParseCerts: %d certs, %v", len(certs), err)
	}
	c := certs[0]
	if c.Subject.CommonName != "node-1.example" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if !slices.Equal(c.Subject.OrganizationalUnit, []string{RoleServer}) {
		t.Errorf("OU = %q", c.Subject.OrganizationalUnit)
	}
	if want := []string{"node-1.example", "api.herd.internal"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNSNames = %q, want %q", c.DNSNames, want)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")) || !c.IPAddresses[1].Equal(net.ParseIP("fd00::5")) {
		t.Errorf("IPAddresses = %v", c.IPAddresses)
	}
	for _, ip := range c.IPAddresses {
		if ip.IsLoopback() {
			t.Errorf("loopback %v added though not requested", ip)
		}
	}
	if c.IsCA {
		t.Error("node certificate is a CA")
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
	if d := before.Add(-time.Minute).Sub(c.NotBefore); d < -time.Second || d > time.Second {
		t.Errorf("NotBefore = %v, want about a minute before %v", c.NotBefore, before)
	}
	if d := before.Add(2 * time.Hour).Sub(c.NotAfter); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("NotAfter = %v, want about 2h after %v", c.NotAfter, before)
	}
	if !keysMatch(c.PublicKey, key) {
		t.Error("certificate does not carry the requested public key")
	}
	if !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
		t.Error("AuthorityKeyId does not name the CA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node-1.example", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("Verify for %v: %v", usage, err)
		}
	}
	name, role, err := Identity(c)
	if err != nil || name != "node-1.example" || role != RoleServer {
		t.Errorf("Identity = %q, %q, %v", name, role, err)
	}

	again, err := ca.Issue(NodeRequest{Name: "node-1.example", Role: RoleServer, PublicKey: key.Public(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := ParseCerts(again)
	if c2[0].SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two certificates got the same serial")
	}
}

func TestIssueTTLCappedAtCA(t *testing.T) {
	ca, err := NewCA("short-lived", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey()
	certPEM, err := ca.Issue(NodeRequest{Name: "n", Role: RoleClient, PublicKey: key.Public(), TTL: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := ParseCerts(certPEM)
	if !certs[0].NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", certs[0].NotAfter, ca.Cert.NotAfter)
	}
}

func TestIssueEd25519(t *testing.T) {
	ca := newTestCA(t, "ca")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := newNodeWithKey(t, ca, nil, priv, "ed-node", RoleClient, "127.0.0.1")
	if got, ok := n.certs.Leaf().PublicKey.(ed25519.PublicKey); !ok || !got.Equal(pub) {
		t.Errorf("public key = %T, want the Ed25519 key", n.certs.Leaf().PublicKey)
	}
	if n.certs.Name() != "ed-node" || n.certs.Role() != RoleClient {
		t.Errorf("Name/Role = %q/%q", n.certs.Name(), n.certs.Role())
	}
}

func TestIssueRejects(t *testing.T) {
	ca := newTestCA(t, "ca")
	key, _ := NewKey()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := NodeRequest{Name: "ok", Role: RoleServer, PublicKey: key.Public(), TTL: time.Hour}
	if _, err := ca.Issue(good); err != nil {
		t.Fatalf("the valid base request fails: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*NodeRequest)
		want string
	}{
		{"empty name", func(r *NodeRequest) { r.Name = "" }, "node name is empty"},
		{"space in name", func(r *NodeRequest) { r.Name = "a b" }, "outside [A-Za-z0-9._-]"},
		{"slash in name", func(r *NodeRequest) { r.Name = "a/b" }, "outside [A-Za-z0-9._-]"},
		{"non-ASCII name", func(r *NodeRequest) { r.Name = "nœud" }, "outside [A-Za-z0-9._-]"},
		{"name too long", func(r *NodeRequest) { r.Name = strings.Repeat("a", 129) }, "at most 128"},
		{"empty role", func(r *NodeRequest) { r.Role = "" }, `unknown role ""`},
		{"unknown role", func(r *NodeRequest) { r.Role = "admin" }, `unknown role "admin"`},
		{"nil key", func(r *NodeRequest) { r.PublicKey = nil }, "public key is missing"},
		{"nil ECDSA key", func(r *NodeRequest) { r.PublicKey = (*ecdsa.PublicKey)(nil) }, "incomplete"},
		{"P-384 key", func(r *NodeRequest) { r.PublicKey = p384.Public() }, "P-384 is not supported"},
		{"RSA key", func(r *NodeRequest) { r.PublicKey = rsaKey.Public() }, "RSA public keys are not supported"},
		{"private key as public", func(r *NodeRequest) { r.PublicKey = key }, "*ecdsa.PrivateKey is not supported"},
		{"short Ed25519 key", func(r *NodeRequest) { r.PublicKey = ed25519.PublicKey{1, 2, 3} }, "Ed25519 public key is 3 bytes"},
		{"zero TTL", func(r *NodeRequest) { r.TTL = 0 }, "TTL must be positive"},
		{"negative TTL", func(r *NodeRequest) { r.TTL = -time.Minute }, "TTL must be positive"},
		{"bad IP", func(r *NodeRequest) { r.IPs = []net.IP{{1, 2, 3}} }, "IP address 1 is invalid"},
		{"empty DNS name", func(r *NodeRequest) { r.DNSNames = []string{""} }, "empty DNS name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.mod(&req)
			out, err := ca.Issue(req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Issue error = %v, want one containing %q", err, tc.want)
			}
			if out != nil {
				t.Error("Issue returned a certificate with its error")
			}
		})
	}
	var nilCA *CA
	if _, err := nilCA.Issue(good); err == nil {
		t.Error("Issue on a nil CA succeeded")
	}
	// Every allowed character, at the maximum length.
	req := good
	req.Name = strings.Repeat("aZ09._-", 19)[:128]
	if _, err := ca.Issue(req); err != nil {
		t.Errorf("Issue with a 128-character name: %v", err)
	}
}

func TestIdentity(t *testing.T) {
	ca := newTestCA(t, "ca")
	key, _ := NewKey()
	now := time.Now()

	extra := nodeTemplate("multi", "x", now, now.Add(time.Hour))
	extra.Subject.OrganizationalUnit = []string{"team-a", RoleClient, RoleServer}
	name, role, err := Identity(rawCert(t, ca, extra, key.Public()))
	if err != nil || name != "multi" || role != RoleClient {
		t.Errorf("Identity = %q, %q, %v; want multi, client (the first known role)", name, role, err)
	}

	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"nil", nil, "certificate is nil"},
		{"CA", ca.Cert, "is a CA certificate"},
		{"no role", rawCert(t, ca, nodeTemplate("norole", "admin", now, now.Add(time.Hour)), key.Public()), "no \"server\" or \"client\" role"},
		{"bad name", rawCert(t, ca, nodeTemplate("bad name", RoleServer, now, now.Add(time.Hour)), key.Public()), "outside [A-Za-z0-9._-]"},
	} {
		if _, _, err := Identity(tc.cert); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Identity(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
