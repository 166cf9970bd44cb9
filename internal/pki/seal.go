package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// SecretSize is the size in bytes of a cluster secret.
const SecretSize = 32

// sealVersion is the first byte of every sealed blob.
const sealVersion = 1

// Sealed layout: version byte, nonce, ciphertext with its tag.
const (
	sealNonceSize = 12
	sealTagSize   = 16
	sealOverhead  = 1 + sealNonceSize + sealTagSize
)

// NewSecret returns a new random 32-byte cluster secret.
func NewSecret() ([]byte, error) {
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generating secret: %w", err)
	}
	return secret, nil
}

// Seal encrypts plaintext under a 32-byte secret with AES-256-GCM. label
// names what is sealed and is bound as additional data: Open with any other
// label fails. The output is a version byte (1), a 12-byte random nonce,
// then the ciphertext and its 16-byte tag.
func Seal(secret, plaintext []byte, label string) ([]byte, error) {
	aead, err := newAEAD(secret)
	if err != nil {
		return nil, fmt.Errorf("sealing %q: %w", label, err)
	}
	out := make([]byte, 1+sealNonceSize, 1+sealNonceSize+len(plaintext)+sealTagSize)
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("sealing %q: generating nonce: %w", label, err)
	}
	return aead.Seal(out, out[1:], plaintext, []byte(label)), nil
}

// Open decrypts what Seal made under the same secret and label. A wrong
// secret, a wrong label, and truncated or tampered input are all errors;
// no error includes key material or plaintext.
func Open(secret, sealed []byte, label string) ([]byte, error) {
	aead, err := newAEAD(secret)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", label, err)
	}
	if len(sealed) == 0 {
		return nil, fmt.Errorf("opening %q: sealed data is empty", label)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("opening %q: unsupported sealed data version %d (want %d)", label, sealed[0], sealVersion)
	}
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("opening %q: sealed data is truncated (%d bytes, at least %d needed)", label, len(sealed), sealOverhead)
	}
	nonce := sealed[1 : 1+sealNonceSize]
	plaintext, err := aead.Open(nil, nonce, sealed[1+sealNonceSize:], []byte(label))
	if err != nil {
		// The cipher's own error says only "message authentication failed".
		return nil, fmt.Errorf("opening %q: authentication failed: wrong secret or label, or the data is corrupt", label)
	}
	return plaintext, nil
}

// newAEAD makes the AES-256-GCM cipher for secret.
func newAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("secret is %d bytes, want %d", len(secret), SecretSize)
	}
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	return aead, nil
}
