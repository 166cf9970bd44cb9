//go:build e2e && linux

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLinkShaperDelays checks the user-space link shaper on its own, in a
// throw-away network namespace: a TCP connect over its loopback, whose
// SYN and SYN-ACK both pass the shaped queue, takes about twice the
// delay, and none at all once the rule is gone.
func TestLinkShaperDelays(t *testing.T) {
	ns := fmt.Sprintf("herd-shaper-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	holder := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	}()
	// connect times one TCP connect inside the namespace.
	connect := func() time.Duration {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", ns, "python3", "-c",
			"import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\nc=socket.socket(); t=time.time(); c.connect(s.getsockname()); print(time.time()-t)").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		return time.Duration(f * float64(time.Second))
	}
	var pid string
	for range 50 { // ip netns exec forks before it execs sleep
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", holder.Process.Pid)); err == nil && strings.TrimSpace(string(b)) == "sleep" {
			pid = strconv.Itoa(holder.Process.Pid)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == "" {
		t.Fatal("the namespace holder did not start")
	}
	sh, err := openShaper(pid, 9, 100*time.Millisecond, 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	rule := []string{"OUTPUT", "-o", "lo", "-j", "NFQUEUE", "--queue-num", "9", "--queue-bypass"}
	if out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "iptables", "-I"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if d := connect(); d < 180*time.Millisecond || d > time.Second {
		t.Errorf("a shaped connect took %s, want about 200 ms", d)
	}
	if out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "iptables", "-D"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	delayed, dropped := sh.Close()
	if delayed < 2 || dropped != 0 {
		t.Errorf("the shaper delayed %d and dropped %d packets", delayed, dropped)
	}
	if d := connect(); d > 50*time.Millisecond {
		t.Errorf("an unshaped connect took %s", d)
	}
}
