package netif

import (
	"encoding/binary"
	"net"
	"net/netip"
)

const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	arpRequest = 1
	arpReply   = 2

	protoICMPv6          = 58
	icmpNeighbourAdvert  = 136
	naFlagRouter         = 0x80
	naFlagOverride       = 0x20
	optTargetLinkAddress = 2

	// minFrame is the shortest Ethernet frame without its checksum; shorter
	// ones are padded, which not every driver does for us.
	minFrame = 60
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is the Ethernet group address of ff02::1 (RFC 2464).
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	allNodes    = netip.MustParseAddr("ff02::1")
)

// arpFrame returns a broadcast gratuitous ARP frame for ip from mac: sender
// and target protocol addresses are both ip. A request leaves the target
// hardware address zero, as an RFC 5227 announcement does; a reply sets it to
// the broadcast address, like arping -A. Some hosts heed only one of the two.
func arpFrame(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	b := make([]byte, minFrame)
	copy(b[0:6], broadcastMAC)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[14:42]
	binary.BigEndian.PutUint16(a[0:2], 1) // hardware type Ethernet
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4 // address lengths
	binary.BigEndian.PutUint16(a[6:8], op)
	ip4 := ip.As4()
	copy(a[8:14], mac)
	copy(a[14:18], ip4[:])
	if op == arpReply {
		copy(a[18:24], broadcastMAC)
	}
	copy(a[24:28], ip4[:])
	return b
}

// naFrame returns an unsolicited neighbour advertisement (RFC 4861 section
// 7.2.6) for ip from mac to all nodes, with the override flag so that
// neighbours replace the link-layer address they have cached, and the router
// flag when router is set, so that neighbours that use this address as their
// router keep doing so. The source address is ip itself.
func naFrame(mac net.HardwareAddr, ip netip.Addr, router bool) []byte {
	const icmpLen = 32 // header 4, flags 4, target 16, option 8
	b := make([]byte, 14+40+icmpLen)
	copy(b[0:6], allNodesMAC)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)

	src, dst := ip.As16(), allNodes.As16()
	h := b[14:54]
	h[0] = 6 << 4 // version; traffic class and flow label zero
	binary.BigEndian.PutUint16(h[4:6], icmpLen)
	h[6] = protoICMPv6
	h[7] = 255 // hop limit; receivers drop neighbour discovery with any other
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])

	m := b[54:]
	m[0] = icmpNeighbourAdvert
	m[4] = naFlagOverride
	if router {
		m[4] |= naFlagRouter
	}
	copy(m[8:24], src[:])
	m[24] = optTargetLinkAddress
	m[25] = 1 // option length in units of 8 bytes
	copy(m[26:32], mac)
	binary.BigEndian.PutUint16(m[2:4], icmpv6Checksum(src, dst, m))
	return b
}

// icmpv6Checksum returns the checksum of an ICMPv6 message msg, whose
// checksum field is zero, sent from src to dst (RFC 4443 section 2.3).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg)) + protoICMPv6 // rest of the pseudo-header
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
