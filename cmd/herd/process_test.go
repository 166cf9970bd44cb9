package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// buildHerd compiles the herd binary once per test run.
func buildHerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		if u, err := net.ListenPacket("udp", l.Addr().String()); err == nil {
			u.Close()
			ports = append(ports, p)
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

type proc struct {
	name string
	cmd  *exec.Cmd
	api  string
	// ca and token reach the cluster's API.
	ca, token string
}

// client is an API client of p with the cluster's management token.
func (p *proc) client(t *testing.T) *api.Client {
	t.Helper()
	c, err := api.NewClientConfig(api.Config{Address: p.api, CACert: p.ca, Token: p.token, IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// startProcs starts n real herd server processes that form a secure
// cluster the way an operator would: the first server creates it, "herd
// acl bootstrap" makes the management token, "herd token create --role
// server" a join token, and the others join with it.
func startProcs(t *testing.T, bin string, n int) []*proc {
	t.Helper()
	ports := freePorts(t, 3*n)
	var procs []*proc
	var token, joinToken string
	for i := range n {
		name := fmt.Sprintf("p%d", i+1)
		dir := filepath.Join(t.TempDir(), name)
		args := []string{"agent", "--server", "--node", name,
			"--data-dir", dir, "--bind", "127.0.0.1",
			"--http-port", strconv.Itoa(ports[3*i]), "--gossip-port", strconv.Itoa(ports[3*i+1]), "--rpc-port", strconv.Itoa(ports[3*i+2])}
		if i > 0 {
			args = append(args, "--retry-join", "127.0.0.1:"+strconv.Itoa(ports[0]), "--token", joinToken)
		}
		cmd := exec.Command(bin, args...)
		logf, _ := os.Create(filepath.Join(t.TempDir(), name+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{name: name, cmd: cmd, api: "127.0.0.1:" + strconv.Itoa(ports[3*i]), ca: filepath.Join(dir, "tls", "ca.pem")}
		procs = append(procs, p)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
		if i == 0 {
			testcluster.WaitFor(t, 20*time.Second, "the first server to create the cluster CA", func() bool {
				_, err := os.Stat(p.ca)
				return err == nil
			})
			testcluster.WaitFor(t, 20*time.Second, "acl bootstrap on the first server", func() bool {
				r := herd(t, "--address", p.api, "--ca-cert", p.ca, "acl", "bootstrap")
				if r.code != 0 {
					return false
				}
				for _, line := range strings.Split(r.stdout, "\n") {
					if v, ok := strings.CutPrefix(line, "SecretID:"); ok {
						token = strings.TrimSpace(v)
					}
				}
				return token != ""
			})
			r := herd(t, "--address", p.api, "--ca-cert", p.ca, "--token", token, "token", "create", "--role", "server", "--ttl", "10m")
			wantCode(t, r, 0)
			joinToken = strings.TrimSpace(r.stdout)
		}
		p.token = token
		if i > 0 {
			p.ca = procs[0].ca // the same CA; p's own copy appears once it joined
		}
	}
	testcluster.WaitFor(t, 30*time.Second, "the processes to agree on a leader", func() bool {
		for _, p := range procs {
			leader, err := p.client(t).Leader(testcluster.Ctx(t, 2*time.Second))
			if err != nil || leader == "" {
				return false
			}
		}
		return true
	})
	return procs
}

func memberStatus(t *testing.T, p *proc, name string) string {
	ms, err := p.client(t).Members(testcluster.Ctx(t, 2*time.Second))
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

// TestRealProcessesDetectKillAndTolerateAPause runs herd as real
// processes: a SIGKILLed agent is marked failed in about a second, while
// one stopped (SIGSTOP) for 400ms is never marked failed.
func TestRealProcessesDetectKillAndTolerateAPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildHerd(t)
	procs := startProcs(t, bin, 3)
	observer := procs[0]

	// A brief pause: the others must not declare it dead.
	paused := procs[1]
	testcluster.WaitFor(t, 10*time.Second, "all members alive", func() bool { return memberStatus(t, observer, paused.name) == "alive" })
	_ = paused.cmd.Process.Signal(syscall.SIGSTOP)
	stopUntil := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(stopUntil.Add(2 * time.Second)) {
		if time.Now().After(stopUntil) {
			_ = paused.cmd.Process.Signal(syscall.SIGCONT)
		}
		if s := memberStatus(t, observer, paused.name); s != "alive" {
			t.Fatalf("a member paused for 400ms was marked %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A kill: marked failed quickly.
	victim := procs[2]
	_ = victim.cmd.Process.Kill()
	killed := time.Now()
	testcluster.WaitFor(t, 10*time.Second, "the killed member marked failed", func() bool {
		return memberStatus(t, observer, victim.name) == "failed"
	})
	took := time.Since(killed)
	t.Logf("killed member marked failed after %s", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Fatalf("failure detection took %s", took)
	}

	// The survivors still form a quorum and accept writes.
	c := observer.client(t)
	if ok, _, err := c.KVPut(testcluster.Ctx(t, 10*time.Second), "after/kill", []byte("x"), nil); err != nil || !ok {
		t.Fatalf("write after kill: %v", err)
	}
}
