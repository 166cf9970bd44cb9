package pki

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// checkNoLeak fails if err's text contains the secret or the plaintext.
func checkNoLeak(t *testing.T, err error, secret, plaintext []byte) {
	t.Helper()
	msg := err.Error()
	for _, bad := range []string{hex.EncodeToString(secret), string(secret), strings.ToUpper(hex.EncodeToString(secret)), string(plaintext)} {
		if bad != "" && strings.Contains(msg, bad) {
			t.Errorf("error %q leaks secret material", msg)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 {
		t.Fatalf("NewSecret returned %d bytes, want 32", len(secret))
	}
	other, _ := NewSecret()
	if bytes.Equal(secret, other) {
		t.Fatal("two secrets are equal")
	}

	for _, plaintext := range [][]byte{nil, []byte("x"), []byte("-----BEGIN PRIVATE KEY-----\nabc\n"), bytes.Repeat([]byte{0xAB}, 4096)} {
		sealed, err := Seal(secret, plaintext, "ca-key")
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + 12 + len(plaintext) + 16; len(sealed) != want {
			t.Errorf("sealed length = %d, want %d", len(sealed), want)
		}
		if sealed[0] != 1 {
			t.Errorf("version byte = %d, want 1", sealed[0])
		}
		if len(plaintext) > 4 && bytes.Contains(sealed, plaintext) {
			t.Error("sealed output contains the plaintext")
		}
		got, err := Open(secret, sealed, "ca-key")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Errorf("Open = %q, want %q", got, plaintext)
		}
	}

	a, _ := Seal(secret, []byte("same"), "l")
	b, _ := Seal(secret, []byte("same"), "l")
	if bytes.Equal(a, b) || bytes.Equal(a[1:13], b[1:13]) {
		t.Error("sealing twice gave the same nonce or output")
	}
}

func TestOpenFailures(t *testing.T) {
	secret, _ := NewSecret()
	wrong, _ := NewSecret()
	plaintext := []byte("the CA private key")
	sealed, err := Seal(secret, plaintext, "ca-key")
	if err != nil {
		t.Fatal(err)
	}

	fail := func(t *testing.T, key, in []byte, label, want string) {
		t.Helper()
		got, err := Open(key, in, label)
		if err == nil {
			t.Fatalf("Open succeeded, returned %q", got)
		}
		if got != nil {
			t.Error("Open returned plaintext with its error")
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error = %v, want one containing %q", err, want)
		}
		checkNoLeak(t, err, secret, plaintext)
		checkNoLeak(t, err, key, plaintext)
	}

	t.Run("wrong secret", func(t *testing.T) { fail(t, wrong, sealed, "ca-key", "authentication failed") })
	t.Run("wrong label", func(t *testing.T) { fail(t, secret, sealed, "node-key", "authentication failed") })
	t.Run("empty label", func(t *testing.T) { fail(t, secret, sealed, "", "authentication failed") })
	t.Run("tampered", func(t *testing.T) {
		for i := 1; i < len(sealed); i++ {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			fail(t, secret, bad, "ca-key", "authentication failed")
		}
	})
	t.Run("version", func(t *testing.T) {
		bad := bytes.Clone(sealed)
		bad[0] = 2
		fail(t, secret, bad, "ca-key", "unsupported sealed data version 2")
	})
	t.Run("truncated", func(t *testing.T) {
		fail(t, secret, nil, "ca-key", "empty")
		for n := 1; n < 1+12+16; n++ {
			fail(t, secret, sealed[:n], "ca-key", "truncated")
		}
		// Long enough to parse, but the tag no longer matches.
		for n := 1 + 12 + 16; n < len(sealed); n++ {
			fail(t, secret, sealed[:n], "ca-key", "authentication failed")
		}
	})
	t.Run("appended", func(t *testing.T) {
		fail(t, secret, append(bytes.Clone(sealed), 0), "ca-key", "authentication failed")
	})
	t.Run("short secret", func(t *testing.T) {
		fail(t, secret[:16], sealed, "ca-key", "secret is 16 bytes, want 32")
		if _, err := Seal(secret[:31], plaintext, "ca-key"); err == nil || !strings.Contains(err.Error(), "secret is 31 bytes, want 32") {
			t.Errorf("Seal with a 31-byte secret: error = %v", err)
		} else {
			checkNoLeak(t, err, secret[:31], plaintext)
		}
	})

	// The original still opens: nothing above changed it.
	if got, err := Open(secret, sealed, "ca-key"); err != nil || !bytes.Equal(got, plaintext) {
		t.Errorf("Open of the untouched data = %q, %v", got, err)
	}
}
