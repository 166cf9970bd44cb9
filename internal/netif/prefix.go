package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrNoInterface is wrapped by the errors of functions given the name of an
// interface that does not exist.
var ErrNoInterface = errors.New("no such interface")

// ParsePrefix parses a floating address with the length of its subnet's
// prefix, such as "10.9.0.100/24" or "fd00::100/64". A bare address stands
// for itself alone (/32 or /128). It refuses what cannot be a host's address:
// the subnet's network address or IPv4 broadcast address, unspecified,
// loopback, multicast, link-local and IPv4-mapped IPv6 addresses, zones and a
// zero prefix length.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("floating address: %w", err)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("floating address: %w", err)
		}
		// Checked here because PrefixFrom drops a zone silently.
		if err := checkAddr(a); err != nil {
			return netip.Prefix{}, fmt.Errorf("floating address %q: %w", s, err)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err := checkPrefix(p); err != nil {
		return netip.Prefix{}, fmt.Errorf("floating address %q: %w", s, err)
	}
	return p, nil
}

// checkPrefix reports why p cannot be a floating address with its subnet.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix %s", p)
	}
	if err := checkAddr(p.Addr()); err != nil {
		return err
	}
	if p.Bits() == 0 {
		return fmt.Errorf("%s has prefix length 0, a subnet of every address", p)
	}
	// /31 and /32 (RFC 3021), /127 and /128 have no reserved addresses.
	if p.Addr().BitLen()-p.Bits() < 2 {
		return nil
	}
	if p.Addr() == p.Masked().Addr() {
		return fmt.Errorf("%s is the network address of %s, not a host address", p.Addr(), p.Masked())
	}
	if p.Addr().Is4() {
		a := p.Addr().As4()
		host := uint32(1)<<(32-p.Bits()) - 1
		if binary.BigEndian.Uint32(a[:])&host == host {
			return fmt.Errorf("%s is the broadcast address of %s, not a host address", p.Addr(), p.Masked())
		}
	}
	return nil
}

// checkAddr reports why a cannot be a floating address.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("no address")
	case a.Zone() != "":
		return fmt.Errorf("%s has a zone; a floating address has none", a)
	case a.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", a)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a.IsLinkLocalUnicast():
		return fmt.Errorf("%s is a link-local address", a)
	}
	return nil
}
