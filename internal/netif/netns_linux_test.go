package netif

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testLink is a pair of network namespaces joined by a veth pair: interface
// ifA in namespace nsA and ifB in nsB, each with an IPv4 and an IPv6
// address in the test subnets.
type testLink struct {
	nsA, nsB   string
	ifA, ifB   string
	macA, macB net.HardwareAddr
}

const (
	addrA   = "10.200.0.1/24"
	addrB   = "10.200.0.2/24"
	addr6A  = "fd00:200::1/64"
	addr6B  = "fd00:200::2/64"
	testIfA = "va"
	testIfB = "vb"
)

var nsCount atomic.Int32

// newTestLink makes a testLink that is gone when the test ends. It skips the
// test where network namespaces cannot be made.
func newTestLink(t *testing.T) *testLink {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	n := nsCount.Add(1)
	l := &testLink{
		nsA:  fmt.Sprintf("herd-netif-%d-%d-a", os.Getpid(), n),
		nsB:  fmt.Sprintf("herd-netif-%d-%d-b", os.Getpid(), n),
		ifA:  testIfA,
		ifB:  testIfB,
		macA: net.HardwareAddr{0x02, 0, 0, 0, 0x0a, 0x01},
		macB: net.HardwareAddr{0x02, 0, 0, 0, 0x0b, 0x01},
	}
	for _, ns := range []string{l.nsA, l.nsB} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot make a network namespace: ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	runIP(t, "-n", l.nsA, "link", "add", l.ifA, "address", l.macA.String(), "type", "veth",
		"peer", "name", l.ifB, "address", l.macB.String(), "netns", l.nsB)
	for _, side := range []struct{ ns, ifname, v4, v6 string }{
		{ns: l.nsA, ifname: l.ifA, v4: addrA, v6: addr6A},
		{ns: l.nsB, ifname: l.ifB, v4: addrB, v6: addr6B},
	} {
		runIP(t, "-n", side.ns, "link", "set", "lo", "up")
		runIP(t, "-n", side.ns, "addr", "add", side.v4, "dev", side.ifname)
		runIP(t, "-n", side.ns, "addr", "add", side.v6, "dev", side.ifname, "nodad")
		runIP(t, "-n", side.ns, "link", "set", side.ifname, "up")
	}
	return l
}

// runIP runs the ip command with args. It must not be called inside inNS: the
// child would start in that namespace.
func runIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// inNS runs f on the calling goroutine with its OS thread in network
// namespace ns, and moves the thread back afterwards, also when f calls
// t.Fatal.
func inNS(t *testing.T, ns string, f func()) {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open this thread's network namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter network namespace %s: %v", ns, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread stays locked, so the runtime ends it with the
			// goroutine instead of running other code in ns.
			t.Errorf("leave network namespace %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// capture opens a packet socket on interface ifname in namespace ns that
// receives the frames of Ethernet type proto, and closes it when the test
// ends.
func capture(t *testing.T, ns, ifname string, proto uint16) int {
	t.Helper()
	fd := -1
	inNS(t, ns, func() {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
		if err != nil {
			t.Fatalf("packet socket: %v", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			t.Fatalf("bind packet socket to %s: %v", ifname, err)
		}
	})
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitFrame reads frames from fd until one satisfies match, for up to a
// second, and returns how many it read.
func waitFrame(t *testing.T, fd int, match func(frame []byte) bool) (bool, int) {
	t.Helper()
	buf := make([]byte, 2048)
	seen := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		seen++
		if match(buf[:n]) {
			return true, seen
		}
	}
	return false, seen
}

// eventually polls cond every 10 ms for up to a second.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
