package acl

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/herd-cluster/herd/internal/pki"
)

// The shapes of token identifiers.
const (
	accessorIDLen = 16              // lowercase hex characters of an accessor id
	secretPrefix  = "herd_"         // start of every secret
	secretHexLen  = 40              // lowercase hex characters after secretPrefix: 160 bits
	secretHashLen = 2 * sha256.Size // lowercase hex characters of a secret hash
)

// Token is an API credential. Its secret is never stored: only SecretHash.
type Token struct {
	// AccessorID is the public id of the token, 16 lowercase hex
	// characters, safe to log and to name the token by.
	AccessorID string `json:"accessor_id"`
	// SecretHash is HashSecret of the secret.
	SecretHash string `json:"secret_hash"`
	// Description is free text for people.
	Description string `json:"description,omitempty"`
	// Policies names the policies whose rules the token carries.
	Policies []string `json:"policies,omitempty"`
	// Management makes the token allow everything; such a token lists no
	// policies.
	Management bool `json:"management,omitempty"`
	// ExpiresAt is when the token stops being valid; zero for never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// CreateTime is when the token was made.
	CreateTime time.Time `json:"create_time"`
}

// NewToken makes a token with a random accessor id and secret, created at
// now and, if ttl is positive, expiring ttl later; a zero ttl means it never
// expires. It returns the token, with SecretHash set, and the secret, which
// is to be shown once and not kept. The secret is "herd_" followed by 40
// lowercase hex characters (160 random bits).
//
// It returns an error if ttl is negative, the token is not valid (see
// Token.Validate), or the system's random source fails.
func NewToken(description string, policies []string, management bool, ttl time.Duration, now time.Time) (Token, string, error) {
	if ttl < 0 {
		return Token{}, "", fmt.Errorf("ttl: %s is negative", ttl)
	}
	accessor, err := pki.RandomHex(accessorIDLen / 2)
	if err != nil {
		return Token{}, "", fmt.Errorf("accessor_id: %w", err)
	}
	random, err := pki.RandomHex(secretHexLen / 2)
	if err != nil {
		return Token{}, "", fmt.Errorf("secret: %w", err)
	}
	secret := secretPrefix + random
	t := Token{
		AccessorID:  accessor,
		SecretHash:  pki.HashSecret(secret),
		Description: description,
		Policies:    append([]string(nil), policies...),
		Management:  management,
		CreateTime:  now,
	}
	if len(t.Policies) == 0 {
		t.Policies = nil
	}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := t.Validate(); err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// LooksLikeSecret reports whether s has the shape of a token secret,
// "herd_" and 40 lowercase hex characters, so that garbage can be turned
// away before a lookup.
func LooksLikeSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, secretPrefix)
	return ok && pki.IsLowerHex(rest, secretHexLen)
}

// Expired reports whether the token has an expiry at or before now.
func (t Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now)
}

// Validate checks a token record and returns every problem it finds, each
// naming its field as in `policies[1]: "Ops" is not a valid policy name...`,
// joined by errors.Join in field order; nil when t is valid.
//
// It checks that the accessor id is 16 lowercase hex characters and the
// secret hash 64, that every policy name is a valid policy name listed
// once, that a management token lists no policies, and that an expiry, if
// set, comes after the creation time.
func (t Token) Validate() error {
	var v validator
	if !pki.IsLowerHex(t.AccessorID, accessorIDLen) {
		v.add("accessor_id", "%q is not %d lowercase hex characters", t.AccessorID, accessorIDLen)
	}
	if !pki.IsLowerHex(t.SecretHash, secretHashLen) {
		v.add("secret_hash", "%q is not %d lowercase hex characters", t.SecretHash, secretHashLen)
	}
	if t.Management && len(t.Policies) > 0 {
		v.add("policies", "a management token may not list policies")
	}
	seen := make(map[string]int, len(t.Policies))
	for i, name := range t.Policies {
		field := fmt.Sprintf("policies[%d]", i)
		if msg := policyNameProblem(name); msg != "" {
			v.add(field, "%s", msg)
		} else if j, dup := seen[name]; dup {
			v.add(field, "%q is listed twice (also policies[%d])", name, j)
		} else {
			seen[name] = i
		}
	}
	if !t.ExpiresAt.IsZero() && !t.CreateTime.IsZero() && !t.ExpiresAt.After(t.CreateTime) {
		v.add("expires_at", "%s is not after create_time %s",
			t.ExpiresAt.Format(time.RFC3339Nano), t.CreateTime.Format(time.RFC3339Nano))
	}
	return v.err()
}
