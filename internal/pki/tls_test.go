package pki

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewCerts(t *testing.T) {
	ca := newTestCA(t, "ca")
	n := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	c := n.certs
	if c.Name() != "node-a" || c.Role() != RoleServer {
		t.Errorf("Name/Role = %q/%q", c.Name(), c.Role())
	}
	if c.Leaf().Subject.CommonName != "node-a" {
		t.Errorf("Leaf CN = %q", c.Leaf().Subject.CommonName)
	}
	if !bytes.Equal(c.CAPEM(), ca.CertPEM) {
		t.Error("CAPEM differs from the bundle given")
	}
	if _, err := c.Leaf().Verify(x509.VerifyOptions{Roots: c.Pool()}); err != nil {
		t.Errorf("Leaf does not verify against Pool: %v", err)
	}
	other := newTestCA(t, "other")
	if _, err := other.Cert.Verify(x509.VerifyOptions{Roots: c.Pool()}); err == nil {
		t.Error("Pool trusts a foreign CA")
	}
	// The chain handed to TLS is the leaf then the CA.
	tc, _ := c.getCertificate(nil)
	if len(tc.Certificate) != 2 || !bytes.Equal(tc.Certificate[0], c.Leaf().Raw) || !bytes.Equal(tc.Certificate[1], ca.Cert.Raw) {
		t.Errorf("TLS chain has %d certificates, want leaf and CA", len(tc.Certificate))
	}

	// A bundle of two CAs (as during a CA rotation) accepts certificates
	// of either and presents the one that signed this node.
	bundle := slices.Concat(other.CertPEM, ca.CertPEM)
	both, err := NewCerts(bundle, n.certPEM, n.keyPEM)
	if err != nil {
		t.Fatalf("NewCerts with a two-CA bundle: %v", err)
	}
	tc, _ = both.getCertificate(nil)
	if len(tc.Certificate) != 2 || !bytes.Equal(tc.Certificate[1], ca.Cert.Raw) {
		t.Error("two-CA bundle: the chain does not end with the signing CA")
	}

	otherNode := newNode(t, other, "node-x", RoleServer)
	now := time.Now()
	key, _ := NewKey()
	keyPEM, _ := MarshalKey(key)
	expired := encodeCert(rawCert(t, ca, nodeTemplate("old", RoleServer, now.Add(-2*time.Hour), now.Add(-time.Hour)), key.Public()).Raw)
	noRole := encodeCert(rawCert(t, ca, nodeTemplate("norole", "admin", now.Add(-time.Hour), now.Add(time.Hour)), key.Public()).Raw)
	serverOnly := nodeTemplate("srv-only", RoleServer, now.Add(-time.Hour), now.Add(time.Hour))
	serverOnly.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverOnlyPEM := encodeCert(rawCert(t, ca, serverOnly, key.Public()).Raw)

	for _, tc := range []struct {
		name                string
		caPEM, cert, keyPEM []byte
		want                string
	}{
		{"empty CA bundle", nil, n.certPEM, n.keyPEM, "loading CA bundle"},
		{"non-CA in bundle", slices.Concat(ca.CertPEM, n.certPEM), n.certPEM, n.keyPEM, `certificate 2 ("node-a") is not a CA`},
		{"other CA", ca.CertPEM, otherNode.certPEM, otherNode.keyPEM, "unknown authority"},
		{"mismatched key", ca.CertPEM, n.certPEM, otherNode.keyPEM, "private key does not match"},
		{"no key", ca.CertPEM, n.certPEM, nil, "no PEM data"},
		{"no certificate", ca.CertPEM, nil, n.keyPEM, "loading node certificate"},
		{"expired", ca.CertPEM, expired, keyPEM, "expired"},
		{"not a node certificate", ca.CertPEM, noRole, keyPEM, "not a node certificate"},
		{"CA as node certificate", ca.CertPEM, ca.CertPEM, n.keyPEM, "is a CA certificate"},
		{"no client auth", ca.CertPEM, serverOnlyPEM, keyPEM, "incompatible key usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewCerts(tc.caPEM, tc.cert, tc.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCerts error = %v, want one containing %q", err, tc.want)
			}
			if got != nil {
				t.Error("NewCerts returned Certs with its error")
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "ca")
	server := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	client := newNodeWithKey(t, ca, nil, edKey, "node-b", RoleServer, "127.0.0.1")

	o := handshake(t, server.certs.NodeServerConfig(RoleServer), client.certs.ClientConfig(RoleServer, false))
	o.mustSucceed(t)
	if o.serverState.Version != tls.VersionTLS13 || o.clientState.Version != tls.VersionTLS13 {
		t.Errorf("version = %x/%x, want TLS 1.3", o.serverState.Version, o.clientState.Version)
	}
	name, role, err := PeerIdentity(o.serverState)
	if err != nil || name != "node-b" || role != RoleServer {
		t.Errorf("server sees peer %q/%q, %v; want node-b/server", name, role, err)
	}
	name, role, err = PeerIdentity(o.clientState)
	if err != nil || name != "node-a" || role != RoleServer {
		t.Errorf("client sees peer %q/%q, %v; want node-a/server", name, role, err)
	}
	// The server presents the CA after its leaf, for joiners pinning it.
	if pc := o.clientState.PeerCertificates; len(pc) != 2 || !pc[1].Equal(ca.Cert) {
		t.Errorf("server presented %d certificates, want leaf and CA", len(pc))
	}

	// Without a role requirement any node certificate is accepted.
	agent := newNode(t, ca, "agent-1", RoleClient)
	o = handshake(t, server.certs.NodeServerConfig(""), agent.certs.ClientConfig("", false))
	o.mustSucceed(t)
	if _, role, _ := PeerIdentity(o.serverState); role != RoleClient {
		t.Errorf("server sees role %q, want client", role)
	}
}

func TestMutualTLSRefusals(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	server := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	client := newNode(t, ca, "node-b", RoleServer, "127.0.0.1")
	srvCfg := server.certs.NodeServerConfig(RoleServer)

	t.Run("client cert from another CA", func(t *testing.T) {
		// The intruder trusts our CA (so it accepts the server) but holds a
		// certificate from another CA.
		o := handshake(t, srvCfg, foreignClient(t, ca, false))
		o.mustFail(t, "server", "unknown authority")
		if o.clientErr == nil {
			t.Error("the intruder did not see its connection refused")
		}
	})

	t.Run("client without certificate", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: client.certs.Pool(), MinVersion: tls.VersionTLS13}
		o := handshake(t, srvCfg, cfg)
		o.mustFail(t, "server", "didn't provide a certificate")
		if o.clientErr == nil {
			t.Error("the client did not see its connection refused")
		}
	})

	t.Run("client with wrong role", func(t *testing.T) {
		agent := newNode(t, ca, "agent-7", RoleClient)
		o := handshake(t, srvCfg, agent.certs.ClientConfig(RoleServer, false))
		o.mustFail(t, "server", `peer "agent-7" has role "client", want "server"`)
		if o.clientErr == nil {
			t.Error("the client did not see its connection refused")
		}
	})

	t.Run("server with wrong role", func(t *testing.T) {
		agent := newNode(t, ca, "agent-8", RoleClient, "127.0.0.1")
		o := handshake(t, agent.certs.NodeServerConfig(""), client.certs.ClientConfig(RoleServer, false))
		o.mustFail(t, "client", `peer "agent-8" has role "client", want "server"`)
	})

	t.Run("server name mismatch", func(t *testing.T) {
		elsewhere := newNode(t, ca, "node-z", RoleServer, "10.1.2.3")
		o := handshake(t, elsewhere.certs.NodeServerConfig(""), client.certs.ClientConfig(RoleServer, false))
		o.mustFail(t, "client", "not 127.0.0.1")
		// The same server is accepted when dialed under its own name.
		cfg := client.certs.ClientConfig(RoleServer, false)
		cfg.ServerName = "node-z"
		handshake(t, elsewhere.certs.NodeServerConfig(""), cfg).mustSucceed(t)
	})

	t.Run("server from another CA", func(t *testing.T) {
		fake := newNode(t, other, "node-a", RoleServer, "127.0.0.1")
		o := handshake(t, fake.certs.NodeServerConfig(""), client.certs.ClientConfig(RoleServer, false))
		o.mustFail(t, "client", "unknown authority")
	})

	now := time.Now()
	key, _ := NewKey()
	expiredLeaf := rawCert(t, ca, nodeTemplate("node-old", RoleServer, now.Add(-2*time.Hour), now.Add(-time.Hour)), key.Public())
	expired := tls.Certificate{Certificate: [][]byte{expiredLeaf.Raw}, PrivateKey: key}

	t.Run("client certificate without a role", func(t *testing.T) {
		// Signed by the CA, but not a node certificate: refused even when
		// no particular role is required.
		leaf := rawCert(t, ca, nodeTemplate("tool", "admin", now.Add(-time.Hour), now.Add(time.Hour)), key.Public())
		cfg := &tls.Config{RootCAs: client.certs.Pool(), MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}}
		o := handshake(t, server.certs.NodeServerConfig(""), cfg)
		o.mustFail(t, "server", `certificate "tool" is not a node certificate`)
	})

	t.Run("expired client certificate", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: client.certs.Pool(), MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{expired}}
		o := handshake(t, srvCfg, cfg)
		o.mustFail(t, "server", "expired")
	})

	t.Run("expired server certificate", func(t *testing.T) {
		cfg := &tls.Config{Certificates: []tls.Certificate{expired}}
		o := handshake(t, cfg, client.certs.ClientConfig("", false))
		o.mustFail(t, "client", "expired")
	})

	t.Run("TLS 1.2 client", func(t *testing.T) {
		cfg := client.certs.ClientConfig(RoleServer, true)
		cfg.MaxVersion = tls.VersionTLS12
		o := handshake(t, srvCfg, cfg)
		o.mustFail(t, "server", "unsupported versions")
	})

	t.Run("TLS 1.2 server", func(t *testing.T) {
		cfg := server.certs.NodeServerConfig("")
		cfg.MaxVersion = tls.VersionTLS12
		cfg.MinVersion = tls.VersionTLS12
		o := handshake(t, cfg, client.certs.ClientConfig("", false))
		o.mustFail(t, "client", "protocol version")
	})
}

func TestAPIServerConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	server := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	client := newNode(t, ca, "cli", RoleClient)
	api := server.certs.APIServerConfig()

	// TLS 1.2, no client certificate, HTTP/2 negotiated.
	cfg := &tls.Config{RootCAs: server.certs.Pool(), MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	o := handshake(t, api, cfg)
	o.mustSucceed(t)
	if o.serverState.Version != tls.VersionTLS12 {
		t.Errorf("version = %x, want TLS 1.2", o.serverState.Version)
	}
	if o.clientState.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN = %q, want h2", o.clientState.NegotiatedProtocol)
	}
	if _, _, err := PeerIdentity(o.serverState); err == nil || !strings.Contains(err.Error(), "no verified certificate") {
		t.Errorf("PeerIdentity without a client certificate: error = %v", err)
	}

	// A client certificate, when given, is verified and identifies the caller.
	o = handshake(t, api, client.certs.ClientConfig(RoleServer, true))
	o.mustSucceed(t)
	if name, role, err := PeerIdentity(o.serverState); err != nil || name != "cli" || role != RoleClient {
		t.Errorf("PeerIdentity = %q/%q, %v; want cli/client", name, role, err)
	}
	// ... and a certificate from another CA is refused.
	o = handshake(t, api, foreignClient(t, ca, true))
	o.mustFail(t, "server", "unknown authority")

	// TLS 1.1 is refused.
	old := &tls.Config{RootCAs: server.certs.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	o = handshake(t, api, old)
	o.mustFail(t, "server", "unsupported versions")
}

// foreignClient is the client config of an intruder: it trusts the CA
// trusted (so it accepts that cluster's servers) but holds a certificate
// from a CA of its own.
func foreignClient(t *testing.T, trusted *CA, forAPI bool) *tls.Config {
	t.Helper()
	own := newTestCA(t, "intruder CA")
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	n := newNodeWithKey(t, own, slices.Concat(own.CertPEM, trusted.CertPEM), key, "intruder", RoleServer, "127.0.0.1")
	return n.certs.ClientConfig("", forAPI)
}

func TestRotation(t *testing.T) {
	ca := newTestCA(t, "ca")
	server := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	client := newNode(t, ca, "node-b", RoleServer, "127.0.0.1")
	srv := startEchoServer(t, server.certs.NodeServerConfig(RoleServer))
	addr := srv.ln.Addr().String()

	conn1 := dial(t, addr, client.certs.ClientConfig(RoleServer, false))
	echo(t, conn1, "before rotation")
	oldSerial := conn1.ConnectionState().PeerCertificates[0].SerialNumber
	if oldSerial.Cmp(server.certs.Leaf().SerialNumber) != 0 {
		t.Fatal("first connection did not see the server's certificate")
	}

	// Rotate the server's certificate to a new key.
	key, _ := NewKey()
	keyPEM, _ := MarshalKey(key)
	certPEM, err := ca.Issue(NodeRequest{Name: "node-a", Role: RoleServer, IPs: server.certs.Leaf().IPAddresses, PublicKey: key.Public(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := server.certs.Update(certPEM, keyPEM); err != nil {
		t.Fatalf("Update: %v", err)
	}
	newSerial := server.certs.Leaf().SerialNumber
	if newSerial.Cmp(oldSerial) == 0 {
		t.Fatal("Update did not change the leaf")
	}

	conn2 := dial(t, addr, client.certs.ClientConfig(RoleServer, false))
	echo(t, conn2, "after rotation")
	if got := conn2.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(newSerial) != 0 {
		t.Errorf("new connection saw serial %v, want the rotated %v", got, newSerial)
	}
	if !keysMatch(conn2.ConnectionState().PeerCertificates[0].PublicKey, key) {
		t.Error("new connection saw the old key")
	}
	// The connection opened before the rotation still works.
	echo(t, conn1, "old connection still up")
	if got := conn1.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(oldSerial) != 0 {
		t.Errorf("old connection's peer serial changed to %v", got)
	}

	// The client side rotates the same way: the server sees the new
	// client certificate on the next handshake.
	before := handshake(t, server.certs.NodeServerConfig(""), client.certs.ClientConfig("", false))
	before.mustSucceed(t)
	ckey, _ := NewKey()
	ckeyPEM, _ := MarshalKey(ckey)
	ccertPEM, err := ca.Issue(NodeRequest{Name: "node-b", Role: RoleServer, PublicKey: ckey.Public(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.certs.Update(ccertPEM, ckeyPEM); err != nil {
		t.Fatal(err)
	}
	after := handshake(t, server.certs.NodeServerConfig(""), client.certs.ClientConfig("", false))
	after.mustSucceed(t)
	if before.serverState.PeerCertificates[0].SerialNumber.Cmp(after.serverState.PeerCertificates[0].SerialNumber) == 0 {
		t.Error("server saw the same client certificate after the client rotated")
	}
	if after.serverState.PeerCertificates[0].SerialNumber.Cmp(client.certs.Leaf().SerialNumber) != 0 {
		t.Error("server did not see the client's current certificate")
	}
}

func TestUpdateFailureKeepsOld(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	n := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	stranger := newNode(t, other, "node-a", RoleServer, "127.0.0.1")
	fresh := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	serial := n.certs.Leaf().SerialNumber

	for _, tc := range []struct {
		name         string
		cert, keyPEM []byte
		want         string
	}{
		{"another CA", stranger.certPEM, stranger.keyPEM, "unknown authority"},
		{"mismatched key", fresh.certPEM, n.keyPEM, "private key does not match"},
		{"garbage", []byte("junk"), []byte("junk"), "rotating certificate"},
	} {
		if err := n.certs.Update(tc.cert, tc.keyPEM); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Update(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
		if n.certs.Leaf().SerialNumber.Cmp(serial) != 0 {
			t.Fatalf("failed Update(%s) replaced the certificate", tc.name)
		}
	}
	// The old certificate still serves handshakes.
	client := newNode(t, ca, "node-b", RoleServer)
	o := handshake(t, n.certs.NodeServerConfig(""), client.certs.ClientConfig("", false))
	o.mustSucceed(t)
	if o.clientState.PeerCertificates[0].SerialNumber.Cmp(serial) != 0 {
		t.Error("handshake after failed updates presented another certificate")
	}
}

func TestRotationConcurrent(t *testing.T) {
	ca := newTestCA(t, "ca")
	server := newNode(t, ca, "node-a", RoleServer, "127.0.0.1")
	client := newNode(t, ca, "node-b", RoleServer)
	srv := startEchoServer(t, server.certs.NodeServerConfig(RoleServer))
	addr := srv.ln.Addr().String()

	// Pre-issue the replacement certificates so the loop only swaps.
	type pair struct{ cert, key []byte }
	var pairs []pair
	for range 5 {
		key, _ := NewKey()
		keyPEM, _ := MarshalKey(key)
		certPEM, err := ca.Issue(NodeRequest{Name: "node-a", Role: RoleServer, IPs: server.certs.Leaf().IPAddresses, PublicKey: key.Public(), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{certPEM, keyPEM})
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for j := range 3 {
				if err := dialEcho(addr, client.certs.ClientConfig(RoleServer, false), fmt.Sprintf("dialer %d round %d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, p := range pairs {
		if err := server.certs.Update(p.cert, p.key); err != nil {
			t.Fatal(err)
		}
		_ = server.certs.Name()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("connection during rotation: %v", err)
	}
	last, _ := ParseCerts(pairs[len(pairs)-1].cert)
	if !server.certs.Leaf().Equal(last[0]) {
		t.Error("Leaf is not the last certificate swapped in")
	}
}

func TestJoinClientConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	// The joiner dials an address the certificate does not name: the pin,
	// not the name, is what it trusts.
	server := newNode(t, ca, "node-a", RoleServer, "10.9.9.9")
	api := server.certs.APIServerConfig()

	tok, err := NewJoinToken(ca.Hash())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseJoinToken(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := JoinClientConfig(parsed.CAHash)
	if cfg.MinVersion != tls.VersionTLS12 || cfg.Certificates != nil || cfg.GetClientCertificate != nil {
		t.Errorf("JoinClientConfig: MinVersion %x, certificates set: %v", cfg.MinVersion, cfg.Certificates != nil || cfg.GetClientCertificate != nil)
	}
	o := handshake(t, api, cfg)
	o.mustSucceed(t)
	if _, _, err := PeerIdentity(o.serverState); err == nil {
		t.Error("the joiner presented a client certificate")
	}

	t.Run("TLS 1.2", func(t *testing.T) {
		cfg := JoinClientConfig(ca.Hash())
		cfg.MaxVersion = tls.VersionTLS12
		handshake(t, api, cfg).mustSucceed(t)
	})

	t.Run("another CA's hash", func(t *testing.T) {
		o := handshake(t, api, JoinClientConfig(other.Hash()))
		o.mustFail(t, "client", "the cluster's CA does not match the token's CA hash")
	})

	t.Run("hash of the leaf", func(t *testing.T) {
		o := handshake(t, api, JoinClientConfig(CertHash(server.certs.Leaf())))
		o.mustFail(t, "client", "the cluster's CA does not match the token's CA hash")
	})

	t.Run("CA not in chain", func(t *testing.T) {
		key, _ := NewKey()
		leaf := rawCert(t, ca, nodeTemplate("node-a", RoleServer, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), key.Public())
		bare := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}}
		o := handshake(t, bare, JoinClientConfig(ca.Hash()))
		o.mustFail(t, "client", "the cluster's CA does not match the token's CA hash")
	})

	t.Run("impostor showing the real CA", func(t *testing.T) {
		// An impostor can copy the real CA certificate into its chain,
		// but cannot make its leaf verify against it.
		key, _ := NewKey()
		leaf := rawCert(t, other, nodeTemplate("node-a", RoleServer, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), key.Public())
		impostor := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key}}}
		o := handshake(t, impostor, JoinClientConfig(ca.Hash()))
		o.mustFail(t, "client", "does not verify against the pinned CA")
	})

	t.Run("expired server certificate", func(t *testing.T) {
		key, _ := NewKey()
		leaf := rawCert(t, ca, nodeTemplate("node-a", RoleServer, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)), key.Public())
		stale := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key}}}
		o := handshake(t, stale, JoinClientConfig(ca.Hash()))
		o.mustFail(t, "client", "expired")
	})
}

func TestExpiresSoon(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(3 * time.Hour)}
	for _, tc := range []struct {
		at       time.Duration
		fraction float64
		want     bool
	}{
		{0, 2.0 / 3, false},
		{time.Hour, 2.0 / 3, false},
		{2*time.Hour - time.Second, 2.0 / 3, false},
		{2 * time.Hour, 2.0 / 3, true},
		{2*time.Hour + time.Second, 2.0 / 3, true},
		{4 * time.Hour, 2.0 / 3, true},
		{-time.Hour, 2.0 / 3, false},
		{90 * time.Minute, 0.5, true},
		{89 * time.Minute, 0.5, false},
		{3*time.Hour - time.Second, 1, false},
		{3 * time.Hour, 1, true},
		{0, 0, true},
		{0, -1, true},
		{time.Hour, 2, false},
	} {
		if got := ExpiresSoon(cert, t0.Add(tc.at), tc.fraction); got != tc.want {
			t.Errorf("ExpiresSoon(at +%v, %v) = %v, want %v", tc.at, tc.fraction, got, tc.want)
		}
	}
	if !ExpiresSoon(nil, t0, 0.5) {
		t.Error("a nil certificate should be due")
	}

	// On a real certificate, fresh is not due and a certificate from a CA
	// about to expire is.
	ca := newTestCA(t, "ca")
	n := newNode(t, ca, "n", RoleServer)
	if ExpiresSoon(n.certs.Leaf(), time.Now(), 2.0/3) {
		t.Error("a fresh one-hour certificate is already due")
	}
	if !ExpiresSoon(n.certs.Leaf(), time.Now().Add(41*time.Minute), 2.0/3) {
		t.Error("a one-hour certificate 41 minutes on is not due (it started a minute early)")
	}
}
