//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

// composeProject is the compose project the test runs deploy/docker-compose.yml
// under, so that it leaves a compose cluster of the default project alone
// (though not its subnet, 172.30.99.0/24: two cannot run at once).
const composeProject = "herd-compose-test"

// TestComposeFormsASecureCluster: `docker-compose up -d` of
// deploy/docker-compose.yml (with the e2e image) forms a cluster of 3
// voters that an operator reaches the way the README says: the management
// token and CA copied out of s1's bootstrap volume, and s1's API on its
// port published on 127.0.0.1, checked against s1's name.
func TestComposeFormsASecureCluster(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := docker(ctx, "image", "inspect", image); err != nil {
		t.Fatalf("no %s image: build it as scripts/e2e.sh does (%v)", image, err)
	}
	file, err := filepath.Abs(filepath.Join("..", "..", "deploy", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	compose := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", composeProject, "-f", file}, args...)...)
		cmd.Env = append(os.Environ(), "HERD_IMAGE="+image, "HERD_API_PORT="+port)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("docker-compose %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return strings.TrimSpace(string(out)), nil
	}
	down := func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer dcancel()
		if _, err := compose(dctx, "down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
			t.Logf("tearing down: %v", err)
		}
	}
	down() // what an interrupted run left
	t.Cleanup(func() {
		if t.Failed() {
			lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
			logs, _ := compose(lctx, "logs", "--no-color")
			lcancel()
			dir := os.Getenv("HERD_ARTIFACTS")
			if dir == "" {
				dir = os.TempDir()
			}
			path := filepath.Join(dir, "e2e-compose.log")
			if err := os.WriteFile(path, []byte(logs), 0o644); err == nil {
				t.Logf("compose logs saved in %s", path)
			}
		}
		down()
	})
	if _, err := compose(ctx, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	s1, err := compose(ctx, "ps", "-q", "s1")
	if err != nil || s1 == "" {
		t.Fatalf("s1's container: %q, %v", s1, err)
	}

	// ca.pem is written before management.token.
	dir := t.TempDir()
	waitFor(t, time.Minute, "the management token in s1's bootstrap volume", func() bool {
		_, err := docker(ctx, "cp", s1+":/bootstrap/"+"management.token", dir)
		return err == nil
	})
	if _, err := docker(ctx, "cp", s1+":/bootstrap/ca.pem", dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"management.token", "ca.pem"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v in the volume, want 0600", name, fi.Mode().Perm())
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "management.token"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := api.NewClientConfig(api.Config{Address: "https://127.0.0.1:" + port, Token: strings.TrimSpace(string(tok)),
		CACert: filepath.Join(dir, "ca.pem"), TLSServerName: "s1", IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the cluster as last seen: %s", last)
		}
	})
	waitFor(t, 2*time.Minute, "3 live members and 3 voters", func() bool {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		ms, err := cl.Members(rctx)
		if err != nil {
			last = err.Error()
			return false
		}
		alive := 0
		for _, m := range ms {
			if m.Status == api.MemberAlive {
				alive++
			}
		}
		cfg, err := cl.RaftConfiguration(rctx)
		if err != nil {
			last = err.Error()
			return false
		}
		voters := 0
		for _, s := range cfg.Servers {
			if s.Voter {
				voters++
			}
		}
		last = fmt.Sprintf("%d alive, %d voters", alive, voters)
		return alive == 3 && voters == 3
	})
	t.Logf("compose cluster: %s", last)
	if _, _, err := cl.KVPut(ctx, "compose/check", []byte("ok"), nil); err != nil {
		t.Fatalf("a write through s1's published port: %v", err)
	}
}

// freeLoopbackPort is a TCP port free on 127.0.0.1 a moment ago, for s1's
// published API (7700 may be a dev agent's).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
