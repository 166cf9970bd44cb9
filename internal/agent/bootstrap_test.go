package agent_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/testcluster"
)

var bootstrapFiles = []string{agent.BootstrapCA, agent.BootstrapManagementToken, agent.BootstrapClientToken, agent.BootstrapServerToken}

// waitBootstrapFiles waits until the server token, written last, is in
// dir.
func waitBootstrapFiles(t *testing.T, dir string) {
	t.Helper()
	testcluster.WaitFor(t, 20*time.Second, "the bootstrap files", func() bool {
		_, err := os.Stat(filepath.Join(dir, agent.BootstrapServerToken))
		return err == nil
	})
}

// readTrimmed is the content of a bootstrap file without its newline.
func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// pinPorts makes cfg restart on the ports a took.
func pinPorts(t *testing.T, cfg *config.Config, a *agent.Agent) {
	t.Helper()
	port := func(addr string) int {
		p, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	self := a.Self()
	cfg.Ports = config.Ports{HTTP: port(self.APIAddr), Gossip: port(self.GossipAddr), RPC: port(self.RPCAddr)}
	cfg.Ephemeral = false
}

// TestBootstrapDirWritesTheClusterFiles: the server that creates a cluster
// with --bootstrap-dir bootstraps the ACLs once it leads and writes the
// management token, a server and a client join token and the CA, mode
// 0600 in a directory it creates 0700; the management token and CA reach
// the API. Restarted on its state, it writes nothing.
func TestBootstrapDirWritesTheClusterFiles(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := filepath.Join(t.TempDir(), "bootstrap")
	cfg := nodeConfig(t, "s1", true, "", "")
	cfg.Security.BootstrapDir = dir
	a, err := agent.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	waitBootstrapFiles(t, dir)
	testcluster.WaitFor(t, 5*time.Second, "the log line that says where the files went", func() bool {
		return strings.Contains(logs.String(), "bootstrap files written") && strings.Contains(logs.String(), "dir="+dir)
	})

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	for _, name := range bootstrapFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(bootstrapFiles) {
		t.Errorf("%s holds %d entries, want the %d files (no temporary files)", dir, len(entries), len(bootstrapFiles))
	}
	wantCA, err := os.ReadFile(a.CACertFile())
	if err != nil {
		t.Fatal(err)
	}
	if gotCA, _ := os.ReadFile(filepath.Join(dir, agent.BootstrapCA)); !bytes.Equal(gotCA, wantCA) {
		t.Errorf("ca.pem is not the cluster CA")
	}

	// The management token and the CA file are all an operator needs.
	mgmt := readTrimmed(t, filepath.Join(dir, agent.BootstrapManagementToken))
	c, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: mgmt, CACert: filepath.Join(dir, agent.BootstrapCA), IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testcluster.Ctx(t, 30*time.Second)
	self, err := c.ACLTokenSelf(ctx)
	if err != nil {
		t.Fatalf("the management token does not work: %v", err)
	}
	if !self.Management {
		t.Errorf("the token in %s is not a management token: %+v", agent.BootstrapManagementToken, self)
	}
	if _, _, err := c.KVPut(ctx, "bootstrap/check", []byte("ok"), nil); err != nil {
		t.Fatalf("a write with the management token: %v", err)
	}
	toks, err := c.JoinTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]*api.JoinToken{}
	for _, jt := range toks {
		roles[jt.Role] = jt
	}
	for role, file := range map[string]string{pki.RoleServer: agent.BootstrapServerToken, pki.RoleClient: agent.BootstrapClientToken} {
		jt, ok := roles[role]
		if !ok {
			t.Fatalf("no %s join token in the cluster: %+v", role, toks)
		}
		if left := time.Until(jt.ExpiresAt); left < agent.BootstrapJoinTTL-time.Minute || left > agent.BootstrapJoinTTL {
			t.Errorf("the %s join token expires in %s, want %s", role, left, agent.BootstrapJoinTTL)
		}
		tok, err := pki.ParseJoinToken(readTrimmed(t, filepath.Join(dir, file)))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if tok.ID != jt.ID {
			t.Errorf("%s holds token %s, the cluster's %s token is %s", file, tok.ID, role, jt.ID)
		}
		if strings.Contains(logs.String(), tok.Secret) {
			t.Errorf("the secret of the %s join token is in the (debug) log", role)
		}
	}
	if strings.Contains(logs.String(), mgmt) {
		t.Errorf("the management token is in the (debug) log")
	}

	// A restart on the data dir writes nothing and makes no token.
	before := map[string][]byte{}
	for _, name := range bootstrapFiles {
		before[name], _ = os.ReadFile(filepath.Join(dir, name))
	}
	pinPorts(t, &cfg, a)
	if err := a.Leave(testcluster.Ctx(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	logs2 := &syncBuffer{}
	a, err = agent.New(cfg, slog.New(slog.NewTextHandler(logs2, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	if !strings.Contains(logs2.String(), "not writing the bootstrap files") {
		t.Errorf("the restart does not say it leaves the bootstrap files alone:\n%s", logs2.String())
	}
	c2, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: mgmt, CACert: filepath.Join(dir, agent.BootstrapCA), IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var after []*api.JoinToken
	testcluster.WaitFor(t, 20*time.Second, "the restarted server to answer", func() bool {
		after, err = c2.JoinTokens(ctx)
		return err == nil
	})
	if len(after) != len(toks) {
		t.Errorf("the restart made join tokens: %d before, %d after", len(toks), len(after))
	}
	for _, name := range bootstrapFiles {
		if now, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(now, before[name]) {
			t.Errorf("the restart changed %s", name)
		}
	}

	// A crash after management.token and before the join tokens: the
	// restart writes the rest with the management token it finds.
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "tls", "bootstrap-files.due"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{agent.BootstrapClientToken, agent.BootstrapServerToken} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	a, err = agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	waitBootstrapFiles(t, dir)
	if got := readTrimmed(t, filepath.Join(dir, agent.BootstrapManagementToken)); got != mgmt {
		t.Errorf("the resumed bootstrap replaced the management token")
	}
	if after, err = c2.JoinTokens(ctx); err != nil || len(after) != len(toks)+2 {
		t.Errorf("after the resumed bootstrap: %d join tokens (%v), want %d", len(after), err, len(toks)+2)
	}
}

// TestTokenFileWaitsForTheFile: an agent given --token-file for a file
// that does not exist yet says that it waits, and joins once the file
// appears (its content trimmed). An agent whose start is cancelled while
// it waits fails with the reason.
func TestTokenFileWaitsForTheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bootstrap")
	cfg := nodeConfig(t, "s1", true, "", "")
	cfg.Security.BootstrapDir = dir
	s1, err := startAgent(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitBootstrapFiles(t, dir)

	var logs syncBuffer
	tokenFile := filepath.Join(t.TempDir(), "later", "server.token")
	cfg2 := nodeConfig(t, "s2", true, s1.APIAddr(), "")
	cfg2.Security.TokenFile = tokenFile
	type started struct {
		a   *agent.Agent
		err error
	}
	done := make(chan started, 1)
	go func() {
		a, err := agent.NewContext(testcluster.Ctx(t, time.Minute), cfg2, slog.New(slog.NewTextHandler(&logs, nil)))
		done <- started{a, err}
	}()
	testcluster.WaitFor(t, 10*time.Second, "s2 to say it waits for the token file", func() bool {
		return strings.Contains(logs.String(), "waiting for join token file") && strings.Contains(logs.String(), tokenFile)
	})
	select {
	case r := <-done:
		t.Fatalf("s2 started without its token file: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if strings.Count(logs.String(), "waiting for join token file") != 1 {
		t.Errorf("the wait is logged more than once:\n%s", logs.String())
	}
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		t.Fatal(err)
	}
	tok := readTrimmed(t, filepath.Join(dir, agent.BootstrapServerToken))
	if err := os.WriteFile(tokenFile, []byte("\n  "+tok+"  \n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s2 *agent.Agent
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("s2 with the token file: %v", r.err)
		}
		s2 = r.a
		t.Cleanup(func() { _ = s2.Kill() })
	case <-time.After(time.Minute):
		t.Fatal("s2 did not start after its token file appeared")
	}
	if s2.Certificate() == nil {
		t.Fatal("s2 has no certificate")
	}
	mgmt := readTrimmed(t, filepath.Join(dir, agent.BootstrapManagementToken))
	c, err := api.NewClientConfig(api.Config{Address: s1.APIURL(), Token: mgmt, CACert: s1.CACertFile(), IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testcluster.Ctx(t, 30*time.Second)
	testcluster.WaitFor(t, 20*time.Second, "s2 to be a voter", func() bool {
		rc, err := c.RaftConfiguration(ctx)
		if err != nil {
			return false
		}
		for _, s := range rc.Servers {
			if s.Node == "s2" && s.Voter {
				return true
			}
		}
		return false
	})

	t.Run("cancelled", func(t *testing.T) {
		cfg3 := nodeConfig(t, "c3", false, s1.APIAddr(), "")
		cfg3.Security.TokenFile = filepath.Join(t.TempDir(), "never.token")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		a, err := agent.NewContext(ctx, cfg3, nil)
		if err == nil {
			a.Kill()
			t.Fatal("the agent started without its token file")
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "never.token") {
			t.Fatalf("error %q, want the wait for never.token and the deadline", err)
		}
	})
}
