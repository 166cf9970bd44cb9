package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func devConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Dev = true
	cfg.Ephemeral = true
	cfg.Ports = config.Ports{}
	if err := cfg.Finalize(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// devClient is a management client of a dev agent.
func devClient(t *testing.T, a *agent.Agent) *api.Client {
	t.Helper()
	tok, err := a.DevToken(testcluster.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: tok, CACert: a.CACertFile(), IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestDevAgentIsReadyQuicklyAndLeavesNothingBehind(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	start := time.Now()
	a, err := agent.New(devConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 5*time.Second, "dev agent to lead", func() bool {
		return a.Server().IsLeader() && a.Server().Store().ClusterID() != ""
	})
	ready := time.Since(start)
	t.Logf("dev agent ready in %s", ready.Round(time.Millisecond))
	if ready > 2*time.Second {
		t.Errorf("dev agent took %s to be ready, want under 2s", ready)
	}
	dir := a.DataDir()
	if err := a.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dev data dir %s still exists after stop: %v", dir, err)
	}
}

func TestDataDirIsNeverTakenOverOrWiped(t *testing.T) {
	base := func(dir, name string) config.Config {
		cfg := config.Default()
		cfg.Ephemeral, cfg.Ports = true, config.Ports{}
		cfg.NodeName, cfg.DataDir, cfg.BindAddr, cfg.Server, cfg.BootstrapExpect = name, dir, "127.0.0.1", true, 1
		if err := cfg.Finalize(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Run("foreign directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "precious.db"), []byte("data"), 0o600)
		_, err := agent.New(base(dir, "n1"), nil)
		if err == nil || !strings.Contains(err.Error(), "not a herd data dir") {
			t.Fatalf("err = %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "precious.db")); string(b) != "data" {
			t.Fatal("foreign file was changed")
		}
	})
	t.Run("another node's directory", func(t *testing.T) {
		dir := t.TempDir()
		a, err := agent.New(base(dir, "n1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Kill()
		_, err = agent.New(base(dir, "n2"), nil)
		if err == nil || !strings.Contains(err.Error(), `belongs to node "n1"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt identity", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "node.json"), []byte("{not json"), 0o600)
		_, err := agent.New(base(dir, "n1"), nil)
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt raft log", func(t *testing.T) {
		dir := t.TempDir()
		a, err := agent.New(base(dir, "n1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		testcluster.WaitFor(t, 5*time.Second, "leader", func() bool { return a.Server().IsLeader() })
		a.Kill()
		meta := filepath.Join(dir, "raft", "wal", "wal-meta.db")
		if err := os.WriteFile(meta, bytes.Repeat([]byte{0xff}, 8192), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = agent.New(base(dir, "n1"), nil)
		if err == nil || !strings.Contains(err.Error(), "raft log") {
			t.Fatalf("err = %v", err)
		}
		if b, _ := os.ReadFile(meta); !bytes.Equal(b, bytes.Repeat([]byte{0xff}, 8192)) {
			t.Fatal("corrupt log was rewritten")
		}
	})
	t.Run("directory in use", func(t *testing.T) {
		dir := t.TempDir()
		a, err := agent.New(base(dir, "n1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Kill()
		_, err = agent.New(base(dir, "n1"), nil)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("err = %v", err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRetryJoinKeepsTryingAndSaysSo(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := devConfig(t)
	cfg.Security.Disabled = true
	cfg.RetryJoin = []string{"127.0.0.1:1"} // nothing listens there
	cfg.RetryInterval = config.Duration(50 * time.Millisecond)
	cfg.RetryMaxInterval = config.Duration(200 * time.Millisecond)
	a, err := agent.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	testcluster.WaitFor(t, 10*time.Second, "three logged join retries", func() bool {
		return strings.Count(logs.String(), "join failed, retrying") >= 3
	})
	if !strings.Contains(logs.String(), "retry_in=100ms") || !strings.Contains(logs.String(), "retry_in=200ms") {
		t.Fatalf("back-off not visible in logs:\n%s", logs.String())
	}

	// --join (not retried) refuses to start instead.
	cfg2 := devConfig(t)
	cfg2.Security.Disabled = true
	cfg2.Join = []string{"127.0.0.1:1"}
	if _, err := agent.New(cfg2, nil); err == nil || !strings.Contains(err.Error(), "join") {
		t.Fatalf("start with unreachable --join: %v", err)
	}
}

// TestClientLeaveDoesNotWaitForLongPolls: a client agent's supervisor
// keeps a blocking query open through the agent's proxy; a graceful leave
// ends it instead of waiting out its wait time.
func TestClientLeaveDoesNotWaitForLongPolls(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Clients: 1})
	client := c.Node("client1")
	time.Sleep(500 * time.Millisecond) // the supervisor's long-poll is open
	start := time.Now()
	c.Leave(client)
	took := time.Since(start)
	t.Logf("the client agent left in %s", took.Round(time.Millisecond))
	// Before, the API's graceful shutdown waited its full 5 s for the
	// supervisor's blocking query.
	if took >= 4*time.Second {
		t.Fatalf("leaving took %s: the long-poll held the shutdown", took)
	}
}
