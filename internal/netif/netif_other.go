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
