//go:build !linux

package netif

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

var errNotLinux = fmt.Errorf("floating addresses: Linux only: %w", errors.ErrUnsupported)

// InterfaceFor returns an error: the package needs Linux.
func InterfaceFor(p netip.Prefix) (string, error) { return "", errNotLinux }

// Add returns an error: the package needs Linux.
func Add(ifname string, p netip.Prefix) error { return errNotLinux }

// Remove returns an error: the package needs Linux.
func Remove(ifname string, p netip.Prefix) error { return errNotLinux }

// Has returns an error: the package needs Linux.
func Has(ifname string, p netip.Prefix) (bool, error) { return false, errNotLinux }

// Announce returns an error: the package needs Linux.
func Announce(ctx context.Context, ifname string, addr netip.Addr, count int, gap time.Duration) error {
	return errNotLinux
}

// Capable returns an error: the package needs Linux.
func Capable() error { return errNotLinux }

// Host changes addresses in the agent's own network namespace (not on
// this system).
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

// Namespace changes addresses in another network namespace (Linux only).
type Namespace struct{ Host }

// OpenNamespace fails: network namespaces are Linux's.
func OpenNamespace(path string) (*Namespace, error) { return nil, errNotLinux }
