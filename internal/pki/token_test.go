package pki

import (
	"regexp"
	"strings"
	"testing"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	ca := newTestCA(t, "ca")
	tok, err := NewJoinToken(ca.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(tok.ID) {
		t.Errorf("ID = %q, want 16 lowercase hex", tok.ID)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok.Secret) {
		t.Errorf("Secret = %q, want 32 lowercase hex", tok.Secret)
	}
	if tok.CAHash != ca.Hash() {
		t.Errorf("CAHash = %q, want %q", tok.CAHash, ca.Hash())
	}
	s := tok.String()
	want := "herd1." + tok.ID + "." + tok.Secret + "." + strings.TrimPrefix(ca.Hash(), "sha256:")
	if s != want {
		t.Fatalf("String() = %q, want %q", s, want)
	}
	if strings.Contains(s, "sha256") {
		t.Error("token string contains \"sha256\"")
	}
	for _, in := range []string{s, "  " + s + "\n", "\t" + s} {
		got, err := ParseJoinToken(in)
		if err != nil {
			t.Fatalf("ParseJoinToken(%q): %v", in, err)
		}
		if got != tok {
			t.Errorf("ParseJoinToken = %+v, want %+v", got, tok)
		}
	}

	other, _ := NewJoinToken(ca.Hash())
	if other.ID == tok.ID || other.Secret == tok.Secret {
		t.Error("two tokens share an ID or secret")
	}

	for _, bad := range []string{"", "sha256:abc", strings.TrimPrefix(ca.Hash(), "sha256:"), strings.ToUpper(ca.Hash()), ca.Hash() + "0"} {
		if _, err := NewJoinToken(bad); err == nil || !strings.Contains(err.Error(), "CA hash must be") {
			t.Errorf("NewJoinToken(%q) error = %v", bad, err)
		}
	}
}

func TestParseJoinTokenRejects(t *testing.T) {
	const (
		id     = "0123456789abcdef"
		secret = "fedcba9876543210fedcba9876543210"
		hash   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	)
	if _, err := ParseJoinToken("herd1." + id + "." + secret + "." + hash); err != nil {
		t.Fatalf("the valid base token fails: %v", err)
	}
	badSecrets := []string{
		secret,
		"fedcba9876543210fedcba987654321",   // 31 chars
		"fedcba9876543210fedcba98765432100", // 33 chars
		"FEDCBA9876543210FEDCBA9876543210",  // upper case
		"zzzzba9876543210fedcba9876543210",  // not hex
	}
	for _, tc := range []struct {
		name, in, want, secret string
	}{
		{"empty", "   ", "token is empty", ""},
		{"wrong prefix", "kube1." + id + "." + secret + "." + hash, `must start with "herd1."`, secret},
		{"other version", "herd2." + id + "." + secret + "." + hash, "unsupported token version", secret},
		{"no prefix", id + "." + secret + "." + hash, `must start with "herd1."`, secret},
		{"too few parts", "herd1." + id + "." + secret, "has 3 dot-separated parts, want 4", secret},
		{"too many parts", "herd1." + id + "." + secret + "." + hash + ".x", "has 5 dot-separated parts, want 4", secret},
		{"sha256 inside", "herd1." + id + "." + secret + ".sha256:" + hash, "CA hash part", secret},
		{"short ID", "herd1.0123." + secret + "." + hash, "ID part must be 16 lowercase hex", secret},
		{"non-hex ID", "herd1.0123456789abcdeg." + secret + "." + hash, "ID part", secret},
		{"short secret", "herd1." + id + "." + badSecrets[1] + "." + hash, "secret part must be 32 lowercase hex", badSecrets[1]},
		{"long secret", "herd1." + id + "." + badSecrets[2] + "." + hash, "secret part", badSecrets[2]},
		{"upper-case secret", "herd1." + id + "." + badSecrets[3] + "." + hash, "secret part", badSecrets[3]},
		{"non-hex secret", "herd1." + id + "." + badSecrets[4] + "." + hash, "secret part", badSecrets[4]},
		{"short hash", "herd1." + id + "." + secret + "." + hash[:63], "CA hash part must be 64 lowercase hex", secret},
		{"non-hex hash", "herd1." + id + "." + secret + "." + hash[:63] + "x", "CA hash part", secret},
		{"empty parts", "herd1...", "ID part", ""},
		{"inner space", "herd1." + id + ". " + secret + "." + hash, "secret part", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseJoinToken(tc.in)
			if err == nil {
				t.Fatalf("ParseJoinToken accepted %q as %+v", tc.in, got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
			if tc.secret != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.secret)) {
				t.Errorf("error %q echoes the secret part", err)
			}
			if got != (JoinToken{}) {
				t.Errorf("ParseJoinToken returned %+v with its error", got)
			}
		})
	}
}

func TestHashSecret(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 test vector.
	if got, want := HashSecret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("HashSecret(abc) = %q, want %q", got, want)
	}
	tok, err := NewJoinToken(newTestCA(t, "ca").Hash())
	if err != nil {
		t.Fatal(err)
	}
	h := HashSecret(tok.Secret)
	if h != HashSecret(tok.Secret) {
		t.Error("HashSecret is not stable")
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) || strings.Contains(h, tok.Secret) {
		t.Errorf("HashSecret = %q", h)
	}
	if HashSecret(tok.Secret+"0") == h {
		t.Error("different secrets hash the same")
	}
}
