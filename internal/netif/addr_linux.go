package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	// labelSuffix marks the IPv4 addresses Add puts on, in the style of
	// ifconfig aliases ("eth0:herd"), so that `ip addr` shows whose they
	// are. IPv6 addresses have no labels.
	labelSuffix = ":herd"
	// maxLabel is the longest address label the kernel takes (IFNAMSIZ
	// less the terminating NUL).
	maxLabel = 15
	// dumpTries bounds the retries of an address dump that the kernel
	// reports as interrupted by a concurrent change.
	dumpTries = 5
)

// InterfaceFor returns the name of the interface a floating address p goes on
// when its configuration names none: the interface that has an address in p's
// subnet (for a single-address p, /32 or /128, the interface whose subnet
// holds p's address). It returns an error naming the subnet when no interface
// or more than one matches.
func InterfaceFor(p netip.Prefix) (string, error) {
	if err := checkPrefix(p); err != nil {
		return "", fmt.Errorf("find the interface for %s: %w", p, err)
	}
	addrs, err := addrList(nil, family(p.Addr()))
	if err != nil {
		return "", fmt.Errorf("find the interface for %s: %w", p, err)
	}
	var indexes []int
	for _, a := range addrs {
		have, ok := prefixOf(a)
		if !ok {
			continue
		}
		var match bool
		if p.IsSingleIP() {
			match = have.Masked().Contains(p.Addr())
		} else {
			match = p.Masked().Contains(have.Addr())
		}
		if match && !slices.Contains(indexes, a.LinkIndex) {
			indexes = append(indexes, a.LinkIndex)
		}
	}
	names := make([]string, 0, len(indexes))
	for _, i := range indexes {
		l, err := netlink.LinkByIndex(i)
		if err != nil {
			return "", fmt.Errorf("find the interface for %s: interface %d: %w", p, i, err)
		}
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	switch len(names) {
	case 0:
		if p.IsSingleIP() {
			return "", fmt.Errorf("no interface has a subnet that holds %s; name the interface", p.Addr())
		}
		return "", fmt.Errorf("no interface has an address in %s; name the interface", p.Masked())
	case 1:
		return names[0], nil
	default:
		return "", fmt.Errorf("interfaces %s all have addresses in %s; name one", strings.Join(names, ", "), p.Masked())
	}
}

// Add puts p's address, with p's prefix length, on interface ifname. An
// address that is already there is not an error. IPv4 addresses get the label
// "<ifname>:herd" when that fits in the kernel's 15 bytes; IPv6 addresses skip
// duplicate address detection (nodad) so that they are usable at once — the
// owner of a floating address is decided before it is added.
func Add(ifname string, p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, ifname, err)
	}
	l, err := link(ifname)
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	a := nlAddr(p)
	if p.Addr().Is4() {
		if label := ifname + labelSuffix; len(label) <= maxLabel {
			a.Label = label
		}
	} else {
		a.Flags = unix.IFA_F_NODAD
	}
	err = netlink.AddrAdd(l, a)
	if errors.Is(err, unix.EEXIST) {
		// IPv6 refuses an address that is there with any prefix length;
		// only the same one means the work is done.
		bits, ferr := prefixLens(l, p.Addr())
		if ferr != nil {
			return fmt.Errorf("add %s to %s: %w", p, ifname, ferr)
		}
		switch {
		case slices.Contains(bits, p.Bits()):
			return nil
		case len(bits) > 0:
			return fmt.Errorf("add %s to %s: the address is there as %s: %w", p, ifname, netip.PrefixFrom(p.Addr(), bits[0]), err)
		default:
			return fmt.Errorf("add %s to %s: %w", p, ifname, err)
		}
	}
	if err != nil {
		return opError("add "+p.String()+" to "+ifname, err)
	}
	return nil
}

// Remove takes p's address with p's prefix length off interface ifname,
// whoever put it there. An address that is not there is not an error. Like
// `ip addr del`, removing the first IPv4 address of a subnet also removes the
// interface's other addresses in it unless the promote_secondaries sysctl is
// set; a floating address added after the host's own address is never first.
func Remove(ifname string, p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("remove %s from %s: %w", p, ifname, err)
	}
	l, err := link(ifname)
	if err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	// No label: the kernel would then match only addresses that carry it.
	err = netlink.AddrDel(l, nlAddr(p))
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	if err != nil {
		return opError("remove "+p.String()+" from "+ifname, err)
	}
	return nil
}

// Has reports whether p's address, with p's prefix length, is on interface
// ifname.
func Has(ifname string, p netip.Prefix) (bool, error) {
	if err := checkPrefix(p); err != nil {
		return false, fmt.Errorf("look for %s on %s: %w", p, ifname, err)
	}
	l, err := link(ifname)
	if err != nil {
		return false, fmt.Errorf("look for %s: %w", p, err)
	}
	bits, err := prefixLens(l, p.Addr())
	if err != nil {
		return false, fmt.Errorf("look for %s on %s: %w", p, ifname, err)
	}
	return slices.Contains(bits, p.Bits()), nil
}

// prefixLens returns the prefix lengths with which address a is on l: none
// if it is not there, and more than one only for IPv4.
func prefixLens(l netlink.Link, a netip.Addr) ([]int, error) {
	addrs, err := addrList(l, family(a))
	if err != nil {
		return nil, err
	}
	var bits []int
	for _, na := range addrs {
		if have, ok := prefixOf(na); ok && have.Addr() == a {
			bits = append(bits, have.Bits())
		}
	}
	return bits, nil
}

// link looks up interface ifname.
func link(ifname string) (netlink.Link, error) {
	if ifname == "" {
		return nil, errors.New("no interface named")
	}
	l, err := netlink.LinkByName(ifname)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, fmt.Errorf("interface %q: %w", ifname, ErrNoInterface)
	}
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	return l, nil
}

// addrList lists the addresses of family on l, or on every link if l is
// nil, trying again when a concurrent change interrupts the dump.
func addrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	var err error
	for range dumpTries {
		var addrs []netlink.Addr
		addrs, err = netlink.AddrList(l, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list addresses: %w", err)
			}
			return addrs, nil
		}
	}
	return nil, fmt.Errorf("list addresses: %w", err)
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// prefixOf converts a's local address and prefix length.
func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// opError wraps err from an address change, saying which privilege is
// missing when the kernel refused it for want of one.
func opError(op string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s (needs CAP_NET_ADMIN): %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
