package state

import (
	"errors"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

func TestACLBootstrapOnlyOnce(t *testing.T) {
	s := New()
	if s.ACLBootstrapped() {
		t.Fatal("a new store says ACLs are bootstrapped")
	}
	first := &ACLTokenEntry{ACLToken: api.ACLToken{AccessorID: "a1", SecretID: "never stored", Management: true}, SecretHash: "h1"}
	if err := s.ACLBootstrap(5, first); err != nil {
		t.Fatal(err)
	}
	if err := s.ACLBootstrap(6, &ACLTokenEntry{ACLToken: api.ACLToken{AccessorID: "a2", Management: true}, SecretHash: "h2"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second bootstrap = %v, want ErrExists", err)
	}
	idx, tok, err := s.ACLTokenBySecret("h1")
	if err != nil || tok == nil || tok.AccessorID != "a1" || idx != 5 || tok.CreateIndex != 5 {
		t.Fatalf("token by secret = %+v at %d, %v", tok, idx, err)
	}
	if tok.SecretID != "" {
		t.Fatal("the store kept a secret")
	}
	if _, tok, _ := s.ACLTokenBySecret("h2"); tok != nil {
		t.Fatal("the refused bootstrap left a token")
	}
}

func TestACLTokensAndPolicies(t *testing.T) {
	s := New()
	if err := s.ACLTokenCreate(1, &ACLTokenEntry{ACLToken: api.ACLToken{AccessorID: "a1"}, SecretHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []*ACLTokenEntry{
		{ACLToken: api.ACLToken{AccessorID: "a1"}, SecretHash: "other"},
		{ACLToken: api.ACLToken{AccessorID: "other"}, SecretHash: "h1"},
	} {
		if err := s.ACLTokenCreate(2, dup); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate %+v = %v, want ErrExists", dup, err)
		}
	}
	if err := s.ACLTokenCreate(2, &ACLTokenEntry{ACLToken: api.ACLToken{AccessorID: "a2"}}); err == nil {
		t.Fatal("a token without a secret hash was stored")
	}
	p := &api.ACLPolicy{Name: "p", Rules: []api.ACLRule{{Resource: "kv", Access: "read"}}}
	if err := s.ACLPolicySet(3, p); err != nil {
		t.Fatal(err)
	}
	p2 := *p
	p2.Description = "changed"
	if err := s.ACLPolicySet(4, &p2); err != nil {
		t.Fatal(err)
	}
	got, _ := s.ACLPolicy("p")
	if got.CreateIndex != 3 || got.ModifyIndex != 4 || got.Description != "changed" {
		t.Fatalf("policy after update: %+v", got)
	}
	if idx := s.ACLIndex(); idx != 4 {
		t.Fatalf("ACL index %d, want 4", idx)
	}
	if err := s.ACLTokenDelete(5, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, tok, _ := s.ACLTokenBySecret("h1"); tok != nil {
		t.Fatal("a revoked token is still found")
	}
	if err := s.ACLTokenDelete(6, "a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice = %v, want ErrNotFound", err)
	}
	if err := s.ACLPolicyDelete(7, "p"); err != nil {
		t.Fatal(err)
	}
	if idx := s.ACLIndex(); idx != 7 {
		t.Fatalf("ACL index %d after the deletes, want 7", idx)
	}
}

func TestJoinTokensAndPKI(t *testing.T) {
	s := New()
	if err := s.PKISetKeyring(1, []byte{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("keyring before pki.init = %v, want ErrNotFound", err)
	}
	if err := s.PKIInit(2, &PKI{CACert: "ca", CAHash: "sha256:1", CAKey: []byte{9}, Keyring: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	// A second init is a no-op: the first CA stays.
	if err := s.PKIInit(3, &PKI{CACert: "other", CAHash: "sha256:2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PKISetKeyring(4, []byte{2}); err != nil {
		t.Fatal(err)
	}
	idx, p, err := s.PKI(nil)
	if err != nil || p.CACert != "ca" || p.KeyringIndex != 4 || string(p.Keyring) != "\x02" || idx != 4 {
		t.Fatalf("pki = %+v at %d, %v", p, idx, err)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	jt := &JoinTokenEntry{JoinToken: api.JoinToken{ID: "j1", Token: "never stored", Role: "client", ExpiresAt: exp}, SecretHash: "h"}
	if err := s.JoinTokenCreate(5, jt); err != nil {
		t.Fatal(err)
	}
	if err := s.JoinTokenCreate(6, jt); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate join token = %v", err)
	}
	got, _ := s.JoinToken("j1")
	if got == nil || got.Token != "" || got.CreateIndex != 5 || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("join token = %+v", got)
	}
	if err := s.JoinTokenDelete(7, "j1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.JoinToken("j1"); got != nil {
		t.Fatal("a revoked join token is still found")
	}
	if _, list, _ := s.JoinTokens(nil); len(list) != 0 {
		t.Fatalf("join tokens after revocation: %v", list)
	}
}
