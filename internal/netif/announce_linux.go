package netif

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Announce tells the link behind interface ifname that this host now owns
// addr, which must already be on the interface (see Add), so that neighbours
// and switches send its traffic here: for IPv4 a gratuitous ARP request and a
// gratuitous ARP reply, for IPv6 an unsolicited neighbour advertisement with
// the override flag. It sends count rounds, gap apart, and returns early with
// ctx's error when ctx is done. The frames are sent from a packet socket,
// which needs CAP_NET_RAW.
func Announce(ctx context.Context, ifname string, addr netip.Addr, count int, gap time.Duration) error {
	if err := checkAddr(addr); err != nil {
		return fmt.Errorf("announce %s on %s: %w", addr, ifname, err)
	}
	if count < 1 {
		return fmt.Errorf("announce %s on %s: count %d, want at least 1", addr, ifname, count)
	}
	if gap < 0 {
		return fmt.Errorf("announce %s on %s: negative gap %s", addr, ifname, gap)
	}
	l, err := link(ifname)
	if err != nil {
		return fmt.Errorf("announce %s: %w", addr, err)
	}
	attrs := l.Attrs()
	mac := attrs.HardwareAddr
	if attrs.EncapType != "ether" || len(mac) != 6 {
		return fmt.Errorf("announce %s on %s: not an Ethernet interface (link type %s)", addr, ifname, attrs.EncapType)
	}
	// Announcing an address we do not hold would take it from its owner.
	bits, err := prefixLens(l, addr)
	if err != nil {
		return fmt.Errorf("announce %s on %s: %w", addr, ifname, err)
	}
	if len(bits) == 0 {
		return fmt.Errorf("announce %s on %s: the address is not on the interface", addr, ifname)
	}

	var frames [][]byte
	var proto uint16
	if addr.Is4() {
		proto = etherTypeARP
		frames = [][]byte{arpFrame(mac, addr, arpRequest), arpFrame(mac, addr, arpReply)}
	} else {
		proto = etherTypeIPv6
		frames = [][]byte{naFrame(mac, addr, forwarding(ifname))}
	}
	// Protocol 0: the socket only sends, so it must not queue what it sees.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("announce %s on %s: packet socket (needs CAP_NET_RAW): %w", addr, ifname, err)
		}
		return fmt.Errorf("announce %s on %s: packet socket: %w", addr, ifname, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: attrs.Index, Halen: 6}
	copy(to.Addr[:], frames[0][0:6])

	for i := range count {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("announce %s on %s: %w", addr, ifname, ctx.Err())
			case <-time.After(gap):
			}
		} else if err := ctx.Err(); err != nil {
			return fmt.Errorf("announce %s on %s: %w", addr, ifname, err)
		}
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return fmt.Errorf("announce %s on %s: send: %w", addr, ifname, err)
			}
		}
	}
	return nil
}

// forwarding reports whether IPv6 forwarding is on for ifname, that is
// whether this host is a router there; an unreadable setting counts as off.
func forwarding(ifname string) bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// htons converts v to network byte order, as packet sockets take protocols.
func htons(v uint16) uint16 {
	return v<<8 | v>>8
}
