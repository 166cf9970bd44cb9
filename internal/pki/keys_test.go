package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.Curve != elliptic.P256() {
		t.Fatalf("NewKey curve = %s, want P-256", key.Curve.Params().Name)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]crypto.Signer{"ecdsa": key, "ed25519": edKey} {
		pemBytes, err := MarshalKey(k)
		if err != nil {
			t.Fatalf("%s: MarshalKey: %v", name, err)
		}
		block, _ := pem.Decode(pemBytes)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("%s: MarshalKey output is not a PRIVATE KEY block", name)
		}
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			t.Fatalf("%s: MarshalKey output is not PKCS#8: %v", name, err)
		}
		back, err := ParseKey(pemBytes)
		if err != nil {
			t.Fatalf("%s: ParseKey: %v", name, err)
		}
		if !keysMatch(k.Public(), back) {
			t.Errorf("%s: parsed key differs", name)
		}
	}
	if _, err := MarshalKey(nil); err == nil {
		t.Error("MarshalKey(nil) succeeded")
	}
}

func TestParseKeyFormats(t *testing.T) {
	key, _ := NewKey()
	ecDER, _ := x509.MarshalECPrivateKey(key)
	// openssl ecparam -genkey writes an EC PARAMETERS block first.
	withParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})...)
	got, err := ParseKey(withParams)
	if err != nil {
		t.Fatalf("ParseKey(EC PARAMETERS + EC PRIVATE KEY): %v", err)
	}
	if !keysMatch(key.Public(), got) {
		t.Error("EC key differs")
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	got, err = ParseKey(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	if err != nil {
		t.Fatalf("ParseKey(RSA PRIVATE KEY): %v", err)
	}
	if !keysMatch(rsaKey.Public(), got) {
		t.Error("RSA key differs")
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no PEM data"},
		{"not PEM", []byte("hello"), "no PEM data"},
		{"certificate only", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "no \"PRIVATE KEY\""},
		{"corrupt PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "parsing PRIVATE KEY block"},
		{"corrupt EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), "parsing EC PRIVATE KEY block"},
	} {
		if _, err := ParseKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	key, _ := NewKey()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for name, pub := range map[string]any{"ecdsa": key.Public(), "ed25519": edPub} {
		pemBytes, err := MarshalPublicKey(pub)
		if err != nil {
			t.Fatalf("%s: MarshalPublicKey: %v", name, err)
		}
		if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PUBLIC KEY-----")) {
			t.Errorf("%s: output is not a PUBLIC KEY block: %q", name, pemBytes)
		}
		back, err := ParsePublicKey(pemBytes)
		if err != nil {
			t.Fatalf("%s: ParsePublicKey: %v", name, err)
		}
		if eq, ok := back.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
			t.Errorf("%s: parsed public key differs", name)
		}
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	pemOf := func(pub any) []byte {
		b, err := MarshalPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	keyPEM, _ := MarshalKey(key)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"P-384", pemOf(p384.Public()), "curve P-384 is not supported; use P-256"},
		{"RSA", pemOf(rsaKey.Public()), "RSA public keys are not supported"},
		{"private key block", keyPEM, `PEM block is "PRIVATE KEY", want "PUBLIC KEY"`},
		{"empty", nil, "no PEM data"},
		{"corrupt", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{3}}), "parsing public key"},
	} {
		if _, err := ParsePublicKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePublicKey(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := MarshalPublicKey(nil); err == nil {
		t.Error("MarshalPublicKey(nil) succeeded")
	}
}

func TestParseCerts(t *testing.T) {
	a := newTestCA(t, "a")
	b := newTestCA(t, "b")
	keyPEM, _ := a.KeyPEM()
	// Other blocks in the bundle are skipped.
	bundle := slices.Concat(a.CertPEM, keyPEM, []byte("\n"), b.CertPEM)
	certs, err := ParseCerts(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(a.Cert) || !certs[1].Equal(b.Cert) {
		t.Fatalf("ParseCerts returned %d certificates, want a then b", len(certs))
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no \"CERTIFICATE\" PEM block"},
		{"key only", keyPEM, "no \"CERTIFICATE\" PEM block"},
		{"second corrupt", slices.Concat(a.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}})), "certificate 2 of the PEM bundle"},
	} {
		if _, err := ParseCerts(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCerts(%s) error = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
