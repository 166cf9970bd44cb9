package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
}

// startProcs starts n real herd server processes that form a cluster.
func startProcs(t *testing.T, bin string, n int) []*proc {
	t.Helper()
	ports := freePorts(t, 3*n)
	var procs []*proc
	for i := range n {
		name := fmt.Sprintf("p%d", i+1)
		args := []string{"agent", "--server", "--bootstrap-expect", strconv.Itoa(n), "--node", name,
			"--data-dir", filepath.Join(t.TempDir(), name), "--bind", "127.0.0.1",
			"--http-port", strconv.Itoa(ports[3*i]), "--gossip-port", strconv.Itoa(ports[3*i+1]), "--rpc-port", strconv.Itoa(ports[3*i+2])}
		if i > 0 {
			args = append(args, "--retry-join", "127.0.0.1:"+strconv.Itoa(ports[1]))
		}
		cmd := exec.Command(bin, args...)
		logf, _ := os.Create(filepath.Join(t.TempDir(), name+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{name: name, cmd: cmd, api: "127.0.0.1:" + strconv.Itoa(ports[3*i])}
		procs = append(procs, p)
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
	}
	testcluster.WaitFor(t, 20*time.Second, "the processes to elect a leader", func() bool {
		for _, p := range procs {
			var leader string
			resp, err := http.Get("http://" + p.api + "/v1/status/leader?node")
			if err != nil {
				return false
			}
			json.NewDecoder(resp.Body).Decode(&leader)
			resp.Body.Close()
			if leader == "" {
				return false
			}
		}
		return true
	})
	return procs
}

func memberStatus(t *testing.T, apiAddr, name string) string {
	c, _ := api.NewClient(apiAddr)
	ms, err := c.Members(testcluster.Ctx(t, 2*time.Second))
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
	testcluster.WaitFor(t, 10*time.Second, "all members alive", func() bool { return memberStatus(t, observer.api, paused.name) == "alive" })
	_ = paused.cmd.Process.Signal(syscall.SIGSTOP)
	stopUntil := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(stopUntil.Add(2 * time.Second)) {
		if time.Now().After(stopUntil) {
			_ = paused.cmd.Process.Signal(syscall.SIGCONT)
		}
		if s := memberStatus(t, observer.api, paused.name); s != "alive" {
			t.Fatalf("a member paused for 400ms was marked %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A kill: marked failed quickly.
	victim := procs[2]
	_ = victim.cmd.Process.Kill()
	killed := time.Now()
	testcluster.WaitFor(t, 10*time.Second, "the killed member marked failed", func() bool {
		return memberStatus(t, observer.api, victim.name) == "failed"
	})
	took := time.Since(killed)
	t.Logf("killed member marked failed after %s", took.Round(time.Millisecond))
	if took > 4*time.Second {
		t.Fatalf("failure detection took %s", took)
	}

	// The survivors still form a quorum and accept writes.
	c, _ := api.NewClient(observer.api)
	if ok, _, err := c.KVPut(testcluster.Ctx(t, 10*time.Second), "after/kill", []byte("x"), nil); err != nil || !ok {
		t.Fatalf("write after kill: %v", err)
	}
}
