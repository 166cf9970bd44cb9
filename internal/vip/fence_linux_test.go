package vip

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/netif"
)

func TestMain(m *testing.M) {
	RunFenceIfChild() // the watchdog the tests start is this binary
	if os.Getenv("HERD_VIP_TEST_AGENT") != "" {
		fakeAgent() // a stand-in agent that TestFenceOutlivesTheAgent kills
	}
	os.Exit(m.Run())
}

// fakeAgent plays an agent holding a VIP: it starts the watchdog, hands
// it a fence time ($HERD_VIP_TEST_HOLD from now), says "ready" and waits
// to be killed or frozen.
func fakeAgent() {
	exe, _ := os.Executable()
	f, err := StartProcessFence(exe, os.Getenv("HERD_VIP_TEST_NETNS"), os.Stderr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	hold, _ := time.ParseDuration(os.Getenv("HERD_VIP_TEST_HOLD"))
	if err := f.Hold("front", "d0", netip.MustParsePrefix(os.Getenv("HERD_VIP_TEST_AGENT")), time.Now().Add(hold)); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	os.Exit(0)
}

// fenceNS makes a network namespace with an interface d0 (one end of a
// veth pair; this kernel has no dummy interfaces) holding
// 10.200.60.1/24, and returns its path and a handle.
func fenceNS(t *testing.T) (string, *netif.Namespace) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	name := fmt.Sprintf("hvf%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	for _, args := range [][]string{
		{"-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
		{"-n", name, "addr", "add", "10.200.60.1/24", "dev", "d0"},
		{"-n", name, "link", "set", "d0", "up"},
		{"-n", name, "link", "set", "d1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	path := "/var/run/netns/" + name
	ns, err := netif.OpenNamespace(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, ns
}

// TestProcessFence starts the watchdog as a real child process and checks
// that it removes an address when its fence time passes with no renewal,
// leaves alone an address it was told to forget, and removes what it
// watches when the agent's end of the pipe closes (the agent died).
func TestProcessFence(t *testing.T) {
	path, ns := fenceNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParsePrefix("10.200.60.100/24")
	b := netip.MustParsePrefix("10.200.60.101/24")
	c := netip.MustParsePrefix("10.200.60.102/24")
	for _, p := range []netip.Prefix{a, b, c} {
		if err := ns.Add("d0", p); err != nil {
			t.Fatal(err)
		}
	}
	f, err := StartProcessFence(exe, path, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.Hold("a", "d0", a, start.Add(300*time.Millisecond)))
	must(f.Hold("b", "d0", b, start.Add(300*time.Millisecond)))
	must(f.Drop("b"))
	must(f.Hold("c", "d0", c, start.Add(time.Hour)))
	has := func(p netip.Prefix) bool {
		t.Helper()
		ok, err := ns.Has("d0", p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for has(a) {
		if time.Since(start) > 3*time.Second {
			t.Fatal("the watchdog did not remove an address whose fence time passed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the watchdog removed the address after %s, before its fence time", took)
	}
	time.Sleep(100 * time.Millisecond)
	if !has(b) {
		t.Fatal("the watchdog removed an address it was told to forget")
	}
	if !has(c) {
		t.Fatal("the watchdog removed an address before its time")
	}
	// The agent's end closes (as at its death): what it watched goes.
	if err := f.Close(); err != nil {
		t.Fatalf("the watchdog exited with %v", err)
	}
	if has(c) {
		t.Fatal("the watchdog left an address behind when the agent went away")
	}
	if !has(b) {
		t.Fatal("the watchdog removed an address it no longer watched")
	}
}

// TestFenceOutlivesTheAgent: an agent process that holds an address and
// is killed (SIGKILL, so it can do nothing) loses the address at once,
// by its watchdog; one that is frozen (SIGSTOP) loses it at its fence
// time. These are the stale-VIP and paused-holder cases of keepalived.
func TestFenceOutlivesTheAgent(t *testing.T) {
	path, ns := fenceNS(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		hold   time.Duration
		signal syscall.Signal
		within time.Duration
	}{
		{"killed", time.Hour, syscall.SIGKILL, time.Second},
		{"frozen", 500 * time.Millisecond, syscall.SIGSTOP, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := netip.MustParsePrefix("10.200.60.110/24")
			if err := ns.Add("d0", p); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "HERD_VIP_TEST_AGENT="+p.String(), "HERD_VIP_TEST_NETNS="+path, "HERD_VIP_TEST_HOLD="+tc.hold.String())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGCONT)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			line := make([]byte, 64)
			n, _ := out.Read(line)
			if string(line[:n]) != "ready\n" {
				t.Fatalf("the stand-in agent said %q", line[:n])
			}
			start := time.Now()
			if err := cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			for {
				has, err := ns.Has("d0", p)
				if err != nil {
					t.Fatal(err)
				}
				if !has {
					break
				}
				if time.Since(start) > tc.within {
					t.Fatalf("the address is still there %s after the agent was %s", tc.within, tc.name)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s agent: the address was gone %s after the signal", tc.name, time.Since(start).Round(time.Millisecond))
		})
	}
}
