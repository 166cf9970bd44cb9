package membership

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/api"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for a probe already in flight;
	// that goroutine ends on its own within one probe interval and cannot
	// be awaited from outside the library.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

func start(t *testing.T, name string, join ...string) *Membership {
	t.Helper()
	m, err := New(Config{
		NodeName: name, BindAddr: "127.0.0.1", BindPort: 0,
		Meta: Meta{Role: "server", Zone: "z1", Labels: map[string]string{"rack": "r1"}, APIAddr: "127.0.0.1:1", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(join) > 0 {
		if _, err := m.Join(join); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func statusOf(m *Membership, name string) string {
	mem, ok := m.Member(name)
	if !ok {
		return ""
	}
	return mem.Status
}

func waitStatus(t *testing.T, m *Membership, name, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if statusOf(m, name) == want {
			return time.Since(start)
		}
		select {
		case <-m.Notify():
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%s: %s is %q after %s, want %q", m.name, name, statusOf(m, name), within, want)
	return 0
}

func TestJoinCarriesMetadataAndDetectsFailureAndLeave(t *testing.T) {
	a := start(t, "a")
	defer a.Shutdown()
	b := start(t, "b", a.Addr())
	c := start(t, "c", a.Addr())
	defer c.Shutdown()
	waitStatus(t, a, "b", api.MemberAlive, 5*time.Second)
	waitStatus(t, a, "c", api.MemberAlive, 5*time.Second)

	got, _ := a.Member("b")
	if got.Role != "server" || got.Zone != "z1" || got.Labels["rack"] != "r1" || got.APIAddr != "127.0.0.1:1" || got.Version != "test" || got.Addr != b.Addr() {
		t.Fatalf("metadata of b as seen by a: %+v", got)
	}

	// c leaves gracefully: recorded as left, not failed.
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, "c", api.MemberLeft, 5*time.Second)

	// b crashes: recorded as failed in about a second.
	b.Shutdown()
	took := waitStatus(t, a, "b", api.MemberFailed, 10*time.Second)
	t.Logf("crash detected after %s", took.Round(time.Millisecond))
	if len(a.Members()) != 3 {
		t.Fatalf("members: %+v", a.Members())
	}
}

func TestOversizedMetadataIsRefused(t *testing.T) {
	labels := map[string]string{}
	for i := range 40 {
		labels[string(rune('a'+i%26))+string(rune('a'+i/26))] = "0123456789012345"
	}
	_, err := New(Config{NodeName: "x", BindAddr: "127.0.0.1", Meta: Meta{Labels: labels}})
	if err == nil {
		t.Fatal("metadata over 512 bytes was accepted")
	}
}

func TestDuplicateNameIsRefusedAndHarmsNoOne(t *testing.T) {
	a := start(t, "a")
	defer a.Shutdown()
	b := start(t, "b", a.Addr())
	defer b.Shutdown()
	waitStatus(t, a, "b", api.MemberAlive, 5*time.Second)

	dup, err := New(Config{NodeName: "b", BindAddr: "127.0.0.1", Meta: Meta{Role: "client"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dup.Join([]string{a.Addr()})
	dup.Shutdown() // as the agent does on this error: no leave message
	if !errors.Is(err, ErrNameConflict) {
		t.Fatalf("joining with a taken name: %v, want ErrNameConflict", err)
	}
	// The real b stays alive in a's view.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if s := statusOf(a, "b"); s != api.MemberAlive {
			t.Fatalf("the real b became %q after a duplicate tried to join", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReconnectHealsAfterTheDeadAreForgotten: a member that failed and
// came back at the same address without joining anyone (the two sides of
// a healed partition, each sure the other is dead) is joined again by
// Reconnect, and both see each other alive.
func TestReconnectHealsAfterTheDeadAreForgotten(t *testing.T) {
	a := start(t, "a")
	defer a.Shutdown()
	b := start(t, "b", a.Addr())
	addr := b.Addr()
	waitStatus(t, a, "b", api.MemberAlive, 5*time.Second)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, "b", api.MemberFailed, 10*time.Second)

	host, port, _ := strings.Cut(addr, ":")
	p, _ := strconv.Atoi(port)
	b2, err := New(Config{NodeName: "b", BindAddr: host, BindPort: p, Meta: Meta{Role: "client", Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Reconnect(ctx, 200*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitStatus(t, a, "b", api.MemberAlive, 5*time.Second)
	waitStatus(t, b2, "a", api.MemberAlive, 5*time.Second)
	if mem, _ := a.Member("b"); mem.Role != "client" {
		t.Errorf("a sees b's old metadata after the reconnect: %+v", mem)
	}
}
