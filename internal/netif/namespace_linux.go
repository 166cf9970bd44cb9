package netif

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// Host changes addresses in the agent's own network namespace: the
// package's functions as methods, for callers that take an interface.
type Host struct{}

// InterfaceFor is the package's InterfaceFor.
func (Host) InterfaceFor(p netip.Prefix) (string, error) { return InterfaceFor(p) }

// Add is the package's Add.
func (Host) Add(ifname string, p netip.Prefix) error { return Add(ifname, p) }

// Remove is the package's Remove.
func (Host) Remove(ifname string, p netip.Prefix) error { return Remove(ifname, p) }

// Has is the package's Has.
func (Host) Has(ifname string, p netip.Prefix) (bool, error) { return Has(ifname, p) }

// Announce is the package's Announce.
func (Host) Announce(ctx context.Context, ifname string, a netip.Addr, count int, gap time.Duration) error {
	return Announce(ctx, ifname, a, count, gap)
}

// Namespace changes addresses in another network namespace (named by a
// path such as /var/run/netns/edge or /proc/PID/ns/net): each call runs
// on a thread switched into it for the call's duration. It is for an agent
// that runs in a container but manages its host's addresses, and for tests
// that give each agent of one process its own namespace.
type Namespace struct {
	path string
}

// OpenNamespace checks that path names a network namespace.
func OpenNamespace(path string) (*Namespace, error) {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	h.Close()
	return &Namespace{path: path}, nil
}

// do runs f on a thread inside the namespace.
func (n *Namespace) do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := netns.Get()
	if err != nil {
		return fmt.Errorf("this thread's network namespace: %w", err)
	}
	defer self.Close()
	target, err := netns.GetFromPath(n.path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", n.path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("entering network namespace %s: %w", n.path, err)
	}
	ferr := f()
	if err := netns.Set(self); err != nil {
		// The thread is in the wrong namespace: keep it locked, so that
		// the runtime ends it with this goroutine instead of reusing it.
		runtime.LockOSThread()
		return fmt.Errorf("leaving network namespace %s: %w", n.path, err)
	}
	return ferr
}

// InterfaceFor is the package's InterfaceFor, in the namespace.
func (n *Namespace) InterfaceFor(p netip.Prefix) (name string, err error) {
	err = n.do(func() error {
		name, err = InterfaceFor(p)
		return err
	})
	return name, err
}

// Add is the package's Add, in the namespace.
func (n *Namespace) Add(ifname string, p netip.Prefix) error {
	return n.do(func() error { return Add(ifname, p) })
}

// Remove is the package's Remove, in the namespace.
func (n *Namespace) Remove(ifname string, p netip.Prefix) error {
	return n.do(func() error { return Remove(ifname, p) })
}

// Has is the package's Has, in the namespace.
func (n *Namespace) Has(ifname string, p netip.Prefix) (has bool, err error) {
	err = n.do(func() error {
		has, err = Has(ifname, p)
		return err
	})
	return has, err
}

// Announce is the package's Announce, in the namespace. The packet socket
// is made inside it; sending the frames may then take the whole count ×
// gap on the locked thread.
func (n *Namespace) Announce(ctx context.Context, ifname string, a netip.Addr, count int, gap time.Duration) error {
	return n.do(func() error { return Announce(ctx, ifname, a, count, gap) })
}
