package acl

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/pki"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestNewToken(t *testing.T) {
	tok, secret, err := NewToken("deploy bot", []string{"ops", "read-kv"}, false, time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "herd_") || len(secret) != len("herd_")+40 {
		t.Errorf("secret %q is not herd_ and 40 characters", secret)
	}
	if strings.Trim(secret[len("herd_"):], "0123456789abcdef") != "" {
		t.Errorf("secret %q is not lowercase hex after herd_", secret)
	}
	if !LooksLikeSecret(secret) {
		t.Errorf("LooksLikeSecret(%q) = false", secret)
	}
	if tok.SecretHash != pki.HashSecret(secret) {
		t.Errorf("SecretHash = %q, want pki.HashSecret(secret) = %q", tok.SecretHash, pki.HashSecret(secret))
	}
	if strings.Contains(tok.SecretHash, secret[len("herd_"):]) || tok.SecretHash == secret {
		t.Error("SecretHash contains the secret")
	}
	if len(tok.AccessorID) != 16 || strings.Trim(tok.AccessorID, "0123456789abcdef") != "" {
		t.Errorf("AccessorID %q is not 16 lowercase hex", tok.AccessorID)
	}
	if tok.Description != "deploy bot" || !slices.Equal(tok.Policies, []string{"ops", "read-kv"}) || tok.Management {
		t.Errorf("token = %+v", tok)
	}
	if !tok.CreateTime.Equal(testNow) || !tok.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Errorf("CreateTime %v, ExpiresAt %v", tok.CreateTime, tok.ExpiresAt)
	}
	if err := tok.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}

	// Secrets and accessor ids are random.
	tok2, secret2, err := NewToken("", nil, true, 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if secret2 == secret || tok2.AccessorID == tok.AccessorID || tok2.SecretHash == tok.SecretHash {
		t.Error("two tokens share a secret or accessor id")
	}
	if !tok2.ExpiresAt.IsZero() || !tok2.Management || tok2.Policies != nil {
		t.Errorf("management token = %+v", tok2)
	}
}

func TestNewTokenCopiesPolicies(t *testing.T) {
	policies := []string{"ops"}
	tok, _, err := NewToken("", policies, false, 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	policies[0] = "changed"
	if tok.Policies[0] != "ops" {
		t.Errorf("token shares the caller's policies slice: %q", tok.Policies)
	}
}

func TestNewTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		policies   []string
		management bool
		ttl        time.Duration
		want       string
	}{
		{name: "negative ttl", ttl: -time.Second, want: "ttl: -1s is negative"},
		{name: "management with policies", policies: []string{"ops"}, management: true,
			want: "policies: a management token may not list policies"},
		{name: "bad policy name", policies: []string{"ops", "Ops!"},
			want: `policies[1]: "Ops!" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, secret, err := NewToken("", tc.policies, tc.management, tc.ttl, testNow)
			if err == nil || err.Error() != tc.want {
				t.Errorf("NewToken() error = %v, want %q", err, tc.want)
			}
			if secret != "" || tok.AccessorID != "" {
				t.Errorf("NewToken() returned a token with its error: %+v, %q", tok, secret)
			}
		})
	}
}

func TestLooksLikeSecret(t *testing.T) {
	good := "herd_" + strings.Repeat("0123456789", 3) + "abcdef0123"
	if !LooksLikeSecret(good) {
		t.Errorf("LooksLikeSecret(%q) = false", good)
	}
	for _, s := range []string{
		"",
		"herd_",
		good[:len(good)-1],
		good + "0",
		strings.ToUpper(good),
		"herd_" + strings.Repeat("A", 40),
		"herd_" + strings.Repeat("g", 40),
		"HERD_" + good[5:],
		"herd-" + good[5:],
		"xherd_" + good[6:],
		good[:20] + " " + good[21:],
		good[:20] + "\xff" + good[21:],
		pki.HashSecret(good),
		"00000000-0000-0000-0000-000000000000",
	} {
		if LooksLikeSecret(s) {
			t.Errorf("LooksLikeSecret(%q) = true", s)
		}
	}
}

func TestExpired(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Time
		want    bool
	}{
		{name: "never", expires: time.Time{}},
		{name: "later", expires: testNow.Add(time.Nanosecond)},
		{name: "at now", expires: testNow, want: true},
		{name: "before", expires: testNow.Add(-time.Hour), want: true},
		{name: "same instant other zone", expires: testNow.In(time.FixedZone("x", 3600)), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := Token{ExpiresAt: tc.expires}
			if got := tok.Expired(testNow); got != tc.want {
				t.Errorf("Expired() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTokenValidate(t *testing.T) {
	valid := Token{
		AccessorID: "0123456789abcdef",
		SecretHash: pki.HashSecret("herd_" + strings.Repeat("a", 40)),
		Policies:   []string{"ops", "kv-read"},
		CreateTime: testNow,
		ExpiresAt:  testNow.Add(time.Minute),
	}
	tests := []struct {
		name   string
		change func(*Token)
		want   []string
	}{
		{name: "valid", change: func(*Token) {}},
		{name: "no policies", change: func(t *Token) { t.Policies = nil }},
		{name: "management", change: func(t *Token) { t.Policies = nil; t.Management = true }},
		{name: "no times", change: func(t *Token) { t.CreateTime = time.Time{}; t.ExpiresAt = time.Time{} }},
		{name: "accessor missing", change: func(t *Token) { t.AccessorID = "" },
			want: []string{`accessor_id: "" is not 16 lowercase hex characters`}},
		{name: "accessor upper case", change: func(t *Token) { t.AccessorID = "0123456789ABCDEF" },
			want: []string{`accessor_id: "0123456789ABCDEF" is not 16 lowercase hex characters`}},
		{name: "accessor too long", change: func(t *Token) { t.AccessorID += "0" },
			want: []string{`accessor_id: "0123456789abcdef0" is not 16 lowercase hex characters`}},
		{name: "secret hash is a secret", change: func(t *Token) { t.SecretHash = "herd_" + strings.Repeat("a", 40) },
			want: []string{`secret_hash: "herd_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is not 64 lowercase hex characters`}},
		{name: "secret hash short", change: func(t *Token) { t.SecretHash = t.SecretHash[:63] },
			want: []string{`secret_hash: "` + valid.SecretHash[:63] + `" is not 64 lowercase hex characters`}},
		{name: "management with policies", change: func(t *Token) { t.Management = true },
			want: []string{`policies: a management token may not list policies`}},
		{name: "bad policy name", change: func(t *Token) { t.Policies = []string{"ops", "", "management"} },
			want: []string{`policies[1]: required`, `policies[2]: "management" is reserved`}},
		{name: "policy twice", change: func(t *Token) { t.Policies = []string{"ops", "kv", "ops"} },
			want: []string{`policies[2]: "ops" is listed twice (also policies[0])`}},
		{name: "expiry at creation", change: func(t *Token) { t.ExpiresAt = t.CreateTime },
			want: []string{`expires_at: 2026-03-01T12:00:00Z is not after create_time 2026-03-01T12:00:00Z`}},
		{name: "every problem", change: func(t *Token) {
			*t = Token{AccessorID: "x", SecretHash: "y", Management: true, Policies: []string{"A"}}
		}, want: []string{
			`accessor_id: "x" is not 16 lowercase hex characters`,
			`secret_hash: "y" is not 64 lowercase hex characters`,
			`policies: a management token may not list policies`,
			`policies[0]: "A" is not a valid policy name: 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter or digit`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := valid
			tok.Policies = slices.Clone(valid.Policies)
			tc.change(&tok)
			if got := problems(tok.Validate()); !slices.Equal(got, tc.want) {
				t.Errorf("Validate() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestTokenJSON(t *testing.T) {
	tok := Token{AccessorID: "0123456789abcdef", SecretHash: "h", CreateTime: testNow}
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"accessor_id":"0123456789abcdef","secret_hash":"h","create_time":"2026-03-01T12:00:00Z"}`
	if string(data) != want {
		t.Errorf("json = %s, want %s", data, want)
	}
	tok.ExpiresAt = testNow.Add(time.Hour)
	tok.Policies = []string{"ops"}
	data, err = json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var back Token
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !back.ExpiresAt.Equal(tok.ExpiresAt) || !slices.Equal(back.Policies, tok.Policies) || back.AccessorID != tok.AccessorID {
		t.Errorf("round trip = %+v, want %+v", back, tok)
	}
}
