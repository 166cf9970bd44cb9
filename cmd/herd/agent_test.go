package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAgentRefusesBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "unknown field", args: []string{"agent", "--config", write("unknown.yaml", "node_name: a\ndata_dir: /tmp/x\nbogus: 1\n")}, code: 1, want: []string{"line 3", "bogus", "unknown field"}},
		{name: "wrong type", args: []string{"agent", "--config", write("type.yaml", "ports:\n  http: eighty\n")}, code: 1, want: []string{"ports.http", "integer"}},
		{name: "invalid address", args: []string{"agent", "--config", write("addr.yaml", "node_name: a\ndata_dir: /tmp/x\nbind_addr: 300.1.1.1\n")}, code: 1, want: []string{"bind_addr", "300.1.1.1"}},
		{name: "invalid join address", args: []string{"agent", "--dev", "--retry-join", "host:99999"}, code: 1, want: []string{"retry_join[0]", "invalid port"}},
		{name: "invalid gateway https address", args: []string{"agent", "--dev", "--gateway-https", "localhost:8443"}, code: 1, want: []string{"gateway.https", "IP address"}},
		{name: "missing certificate file", args: []string{"agent", "--dev", "--config", write("tls.yaml", "gateway:\n  https: 127.0.0.1:18443\n  tls:\n    - cert_file: "+filepath.Join(dir, "nope.crt")+"\n      key_file: "+filepath.Join(dir, "nope.key")+"\n")}, code: 1, want: []string{"gateway.tls[0].cert_file", "nope.crt"}},
		{name: "missing data dir", args: []string{"agent", "--node", "a"}, code: 1, want: []string{"data_dir", "required"}},
		{name: "missing config file", args: []string{"agent", "--config", filepath.Join(dir, "nope.yaml")}, code: 1, want: []string{"nope.yaml"}},
		{name: "token and token file", args: []string{"agent", "--node", "a", "--data-dir", dir, "--retry-join", "10.0.0.1", "--token", "herd1.x", "--token-file", filepath.Join(dir, "join.token")}, code: 1,
			want: []string{"security.token_file: set together with security.token (--token-file and --token): give the join token one way"}},
		{name: "token in the file and token file flag", args: []string{"agent", "--config", write("token.yaml", "node_name: a\ndata_dir: /tmp/x\nsecurity:\n  token: herd1.x\n"), "--token-file", filepath.Join(dir, "join.token")}, code: 1,
			want: []string{"security.token_file", "--token"}},
		{name: "bootstrap dir on a client", args: []string{"agent", "--node", "a", "--data-dir", dir, "--bootstrap-dir", filepath.Join(dir, "boot")}, code: 1,
			want: []string{"security.bootstrap_dir: only a server", "--server"}},
		{name: "bootstrap dir in dev mode", args: []string{"agent", "--dev", "--bootstrap-dir", filepath.Join(dir, "boot")}, code: 1, want: []string{"security.bootstrap_dir: not with --dev"}},
		{name: "unknown flag", args: []string{"agent", "--devv"}, code: 2, want: []string{"unknown flag", "Usage:"}},
		{name: "stray argument", args: []string{"agent", "extra"}, code: 2, want: []string{"Usage:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := herd(t, tc.args...)
			wantCode(t, r, tc.code)
			wantContains(t, "stderr", r.stderr, tc.want...)
		})
	}
}
