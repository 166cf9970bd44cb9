package netif

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0x0a, 0x01}

func TestARPFrame(t *testing.T) {
	ip := netip.MustParseAddr("10.200.0.100")
	for _, tc := range []struct {
		name string
		op   uint16
		tha  net.HardwareAddr
	}{
		{name: "request", op: arpRequest, tha: net.HardwareAddr{0, 0, 0, 0, 0, 0}},
		{name: "reply", op: arpReply, tha: broadcastMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := arpFrame(testMAC, ip, tc.op)
			want := []byte{
				0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // to everyone
				0x02, 0, 0, 0, 0x0a, 0x01, // from us
				0x08, 0x06, // ARP
				0, 1, 0x08, 0x00, 6, 4, 0, byte(tc.op), // Ethernet, IPv4, operation
				0x02, 0, 0, 0, 0x0a, 0x01, 10, 200, 0, 100, // sender
			}
			want = append(want, tc.tha...)
			want = append(want, 10, 200, 0, 100) // target: the same address
			want = append(want, make([]byte, 60-len(want))...)
			if !bytes.Equal(f, want) {
				t.Fatalf("frame\n% x\nwant\n% x", f, want)
			}
		})
	}
}

func TestNAFrame(t *testing.T) {
	ip := netip.MustParseAddr("fd00:200::100")
	for _, router := range []bool{false, true} {
		f := naFrame(testMAC, ip, router)
		if got, want := f[0:14], []byte{0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0x0a, 0x01, 0x86, 0xdd}; !bytes.Equal(got, want) {
			t.Fatalf("Ethernet header % x, want % x", got, want)
		}
		h, m := f[14:54], f[54:]
		if h[0]>>4 != 6 || int(binary.BigEndian.Uint16(h[4:6])) != len(m) || h[6] != 58 || h[7] != 255 {
			t.Fatalf("IPv6 header % x: want version 6, payload %d, ICMPv6, hop limit 255", h, len(m))
		}
		src, dst := net.IP(h[8:24]), net.IP(h[24:40])
		if !src.Equal(ip.AsSlice()) || !dst.Equal(net.ParseIP("ff02::1")) {
			t.Fatalf("IPv6 %s -> %s, want %s -> ff02::1", src, dst, ip)
		}
		flags := byte(0x20)
		if router {
			flags |= 0x80
		}
		body := append([]byte{flags, 0, 0, 0}, ip.AsSlice()...)
		body = append(body, 2, 1) // target link-layer address, 8 bytes
		body = append(body, testMAC...)
		// x/net/icmp computes the checksum independently.
		msg := icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body}}
		want, err := msg.Marshal(icmp.IPv6PseudoHeader(src, dst))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, want) {
			t.Fatalf("router=%v: ICMPv6\n% x\nwant\n% x", router, m, want)
		}
	}
}
