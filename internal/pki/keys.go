package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types used by this package.
const (
	pemCertificate   = "CERTIFICATE"
	pemPrivateKey    = "PRIVATE KEY"
	pemECPrivateKey  = "EC PRIVATE KEY"
	pemRSAPrivateKey = "RSA PRIVATE KEY"
	pemPublicKey     = "PUBLIC KEY"
)

// NewKey makes an ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// MarshalKey encodes a private key as PKCS#8 PEM (a "PRIVATE KEY" block).
func MarshalKey(key crypto.Signer) ([]byte, error) {
	if key == nil {
		return nil, errors.New("marshaling private key: key is nil")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshaling private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseKey decodes the first private key in pemBytes. It accepts PKCS#8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") and PKCS#1 ("RSA PRIVATE KEY")
// blocks; other blocks before the key, such as the "EC PARAMETERS" block
// openssl writes, are skipped. The key must be usable for signing.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	found := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		found = true
		var (
			key any
			err error
		)
		switch block.Type {
		case pemPrivateKey:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemECPrivateKey:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case pemRSAPrivateKey:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parsing %s block: a %T cannot sign", block.Type, key)
		}
		return signer, nil
	}
	if !found {
		return nil, errors.New("parsing private key: no PEM data found")
	}
	return nil, errors.New(`parsing private key: no "PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE KEY" PEM block found`)
}

// MarshalPublicKey encodes a public key as PKIX PEM (a "PUBLIC KEY" block).
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("marshaling public key: key is nil")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshaling public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ParsePublicKey decodes a PKIX "PUBLIC KEY" PEM block. Only the key types
// a node may use are accepted: ECDSA P-256 and Ed25519.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("parsing public key: no PEM data found")
	}
	if block.Type != pemPublicKey {
		return nil, fmt.Errorf("parsing public key: PEM block is %q, want %q", block.Type, pemPublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	if err := checkNodeKey(pub); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	return pub, nil
}

// checkNodeKey accepts the public key types a node certificate may carry.
func checkNodeKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case nil:
		return errors.New("public key is missing")
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return errors.New("ECDSA public key is incomplete")
		}
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on curve %s is not supported; use P-256", k.Curve.Params().Name)
		}
		// Bytes checks that the point is on the curve.
		if _, err := k.Bytes(); err != nil {
			return fmt.Errorf("invalid ECDSA P-256 public key: %w", err)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 public key is %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return nil
	case *rsa.PublicKey:
		return errors.New("RSA public keys are not supported; use ECDSA P-256 or Ed25519")
	default:
		return fmt.Errorf("public key type %T is not supported; use ECDSA P-256 or Ed25519", pub)
	}
}

// ParseCerts parses every "CERTIFICATE" block of a PEM bundle, in order.
// Blocks of other types are skipped. It is an error if there is no
// certificate or if any certificate fails to parse.
func ParseCerts(pemBytes []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d of the PEM bundle: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New(`parsing certificates: no "CERTIFICATE" PEM block found`)
	}
	return certs, nil
}

// encodeCert PEM-encodes a DER certificate.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// publicKeyOf returns the public key of a signer, or an error if it has none.
func publicKeyOf(key crypto.Signer) (crypto.PublicKey, error) {
	if key == nil {
		return nil, errors.New("private key is nil")
	}
	pub := key.Public()
	if pub == nil {
		return nil, errors.New("private key has no public key")
	}
	return pub, nil
}

// keysMatch reports whether pub equals the public half of key.
func keysMatch(pub crypto.PublicKey, key crypto.Signer) bool {
	keyPub, err := publicKeyOf(key)
	if err != nil {
		return false
	}
	eq, ok := keyPub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}
