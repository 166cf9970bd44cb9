package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Join token layout.
const (
	tokenPrefix    = "herd1"
	tokenIDLen     = 16 // hex characters (64 bits)
	tokenSecretLen = 32 // hex characters (128 bits)
	tokenHashLen   = 64 // hex characters of a SHA-256
	tokenParts     = 4
)

// JoinToken is what a new node presents to join the cluster, together with
// the CA pin it uses to verify the cluster before sending anything.
type JoinToken struct {
	// ID is 16 lowercase hex characters. It is public and names the token
	// in listings.
	ID string
	// Secret is 32 lowercase hex characters (128 bits). The cluster stores
	// only HashSecret(Secret).
	Secret string
	// CAHash is the cluster CA's pin, "sha256:" and 64 lowercase hex
	// characters (see CA.Hash).
	CAHash string
}

// NewJoinToken makes a random token pinned to caHash, which must be in the
// form CA.Hash returns.
func NewJoinToken(caHash string) (JoinToken, error) {
	hexHash, ok := strings.CutPrefix(caHash, hashPrefix)
	if !ok || !IsLowerHex(hexHash, tokenHashLen) {
		return JoinToken{}, fmt.Errorf("making join token: CA hash must be %q followed by %d lowercase hex characters", hashPrefix, tokenHashLen)
	}
	id, err := RandomHex(tokenIDLen / 2)
	if err != nil {
		return JoinToken{}, fmt.Errorf("making join token: %w", err)
	}
	secret, err := RandomHex(tokenSecretLen / 2)
	if err != nil {
		return JoinToken{}, fmt.Errorf("making join token: %w", err)
	}
	return JoinToken{ID: id, Secret: secret, CAHash: caHash}, nil
}

// String formats the token as "herd1.<id>.<secret>.<ca-hash>", where
// <ca-hash> is the 64 hex characters of CAHash without "sha256:".
func (t JoinToken) String() string {
	return tokenPrefix + "." + t.ID + "." + t.Secret + "." + strings.TrimPrefix(t.CAHash, hashPrefix)
}

// ParseJoinToken parses a token in the form String returns; surrounding
// whitespace is ignored. Its errors name the part that is wrong and never
// echo the token's secret part.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return JoinToken{}, errors.New("parsing join token: token is empty")
	}
	parts := strings.Split(s, ".")
	if parts[0] != tokenPrefix {
		if strings.HasPrefix(parts[0], "herd") {
			return JoinToken{}, fmt.Errorf("parsing join token: unsupported token version; want a token starting with %q", tokenPrefix+".")
		}
		return JoinToken{}, fmt.Errorf("parsing join token: token must start with %q", tokenPrefix+".")
	}
	if len(parts) != tokenParts {
		return JoinToken{}, fmt.Errorf("parsing join token: token has %d dot-separated parts, want %d (%s.<id>.<secret>.<ca-hash>)", len(parts), tokenParts, tokenPrefix)
	}
	id, secret, hash := parts[1], parts[2], parts[3]
	if !IsLowerHex(id, tokenIDLen) {
		return JoinToken{}, fmt.Errorf("parsing join token: ID part must be %d lowercase hex characters", tokenIDLen)
	}
	if !IsLowerHex(secret, tokenSecretLen) {
		return JoinToken{}, fmt.Errorf("parsing join token: secret part must be %d lowercase hex characters", tokenSecretLen)
	}
	if !IsLowerHex(hash, tokenHashLen) {
		return JoinToken{}, fmt.Errorf("parsing join token: CA hash part must be %d lowercase hex characters", tokenHashLen)
	}
	return JoinToken{ID: id, Secret: secret, CAHash: hashPrefix + hash}, nil
}

// HashSecret is the lowercase hex SHA-256 of a high-entropy secret, for
// storing token secrets hashed. (A fast hash is enough: the secrets are
// random, not passwords.)
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// randomHex returns n random bytes as lowercase hex.
func RandomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// isLowerHex reports whether s is exactly n lowercase hex characters.
func IsLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
