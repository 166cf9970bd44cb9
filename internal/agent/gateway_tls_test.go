package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func selfSignedPEM(t *testing.T, cn string, names ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
}

func TestAgentRefusesBadCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "bad.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	tests := []struct {
		name string
		tls  config.TLSCert
		want string
	}{
		{name: "missing cert file", tls: config.TLSCert{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: garbage}, want: "gateway.tls[0].cert_file: "},
		{name: "missing key file", tls: config.TLSCert{CertFile: garbage, KeyFile: filepath.Join(dir, "nope.key")}, want: "gateway.tls[0].key_file: "},
		{name: "not PEM", tls: config.TLSCert{CertFile: garbage, KeyFile: garbage}, want: "gateway.tls[0]: certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := devConfig(t)
			cfg.Gateway.HTTPS = "127.0.0.1:0"
			cfg.Gateway.TLS = []config.TLSCert{tc.tls}
			a, err := agent.New(cfg, nil)
			if err == nil {
				a.Leave(context.Background())
				t.Fatal("agent started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAgentGatewayServesCertificatesFromKV(t *testing.T) {
	cfg := devConfig(t)
	cfg.Gateway.HTTPS = "127.0.0.1:0"
	a, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave(context.Background())
	testcluster.WaitFor(t, 5*time.Second, "dev agent to lead", func() bool { return a.Server().IsLeader() })
	c := devClient(t, a)
	if _, _, err := c.KVPut(context.Background(), config.DefaultTLSKVPrefix+"site", selfSignedPEM(t, "from-kv", "site.test"), nil); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 5*time.Second, "the gateway to serve the KV certificate", func() bool {
		conn, err := tls.Dial("tcp", a.Gateway().HTTPSAddr(), &tls.Config{ServerName: "site.test", InsecureSkipVerify: true})
		if err != nil {
			return false
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName == "from-kv"
	})
}
