package netif

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestFloatingAddress moves a floating address onto an interface, announces
// it and checks that the peer's kernel takes the announcement and reaches
// the address, then takes it off again.
func TestFloatingAddress(t *testing.T) {
	l := newTestLink(t)
	cases := []struct {
		name  string
		vip   netip.Prefix
		proto uint16
		// isAnnouncement reports whether frame announces vip from mac,
		// and if so which kind it is.
		isAnnouncement func(frame []byte, vip netip.Addr, mac net.HardwareAddr) (string, bool)
		kinds          []string // the kinds of announcement to expect
	}{
		{
			name:           "ipv4",
			vip:            netip.MustParsePrefix("10.200.0.100/24"),
			proto:          unix.ETH_P_ARP,
			isAnnouncement: isGratuitousARP,
			kinds:          []string{"request", "reply"},
		},
		{
			name:           "ipv6",
			vip:            netip.MustParsePrefix("fd00:200::100/64"),
			proto:          unix.ETH_P_IPV6,
			isAnnouncement: isUnsolicitedNA,
			kinds:          []string{"advertisement"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vip := tc.vip.Addr()
			inNS(t, l.nsA, func() {
				if has, err := Has(l.ifA, tc.vip); err != nil || has {
					t.Fatalf("Has before Add = %v, %v; want false, nil", has, err)
				}
				if err := Add(l.ifA, tc.vip); err != nil {
					t.Fatalf("Add: %v", err)
				}
				if has, err := Has(l.ifA, tc.vip); err != nil || !has {
					t.Fatalf("Has after Add = %v, %v; want true, nil", has, err)
				}
				if err := Add(l.ifA, tc.vip); err != nil {
					t.Fatalf("Add again: %v", err)
				}
				checkMark(t, l.ifA, tc.vip)
			})

			// The peer has a stale neighbour entry for the address with
			// a wrong link-layer address, which the announcement must
			// correct (Linux takes unsolicited ARP and NA only to update
			// entries it has).
			runIP(t, "-n", l.nsB, "neigh", "replace", vip.String(), "lladdr", "02:00:00:00:00:99", "dev", l.ifB, "nud", "stale")
			fd := capture(t, l.nsB, l.ifB, tc.proto)
			inNS(t, l.nsA, func() {
				if err := Announce(context.Background(), l.ifA, vip, 2, 10*time.Millisecond); err != nil {
					t.Fatalf("Announce: %v", err)
				}
			})
			missing := map[string]bool{}
			for _, k := range tc.kinds {
				missing[k] = true
			}
			ok, seen := waitFrame(t, fd, func(f []byte) bool {
				if kind, ok := tc.isAnnouncement(f, vip, l.macA); ok {
					delete(missing, kind)
				}
				return len(missing) == 0
			})
			if !ok {
				t.Fatalf("the peer saw %d frames but no announcement of %s from %s: missing %v", seen, vip, l.macA, missing)
			}
			var mac net.HardwareAddr
			if !eventually(func() bool { mac = neighbour(t, l.nsB, l.ifB, vip); return bytes.Equal(mac, l.macA) }) {
				t.Fatalf("the peer's neighbour entry for %s has %v, want %s", vip, mac, l.macA)
			}

			checkConnect(t, l, vip)

			inNS(t, l.nsA, func() {
				if err := Remove(l.ifA, tc.vip); err != nil {
					t.Fatalf("Remove: %v", err)
				}
				if has, err := Has(l.ifA, tc.vip); err != nil || has {
					t.Fatalf("Has after Remove = %v, %v; want false, nil", has, err)
				}
				if err := Remove(l.ifA, tc.vip); err != nil {
					t.Fatalf("Remove again: %v", err)
				}
				err := Announce(context.Background(), l.ifA, vip, 1, 0)
				if err == nil || !strings.Contains(err.Error(), "not on the interface") {
					t.Fatalf("Announce after Remove: %v, want an error saying the address is not on the interface", err)
				}
			})
		})
	}
}

// checkMark checks that Add marked p as it should: an IPv4 address with the
// label "<ifname>:herd", an IPv6 one as nodad.
func checkMark(t *testing.T, ifname string, p netip.Prefix) {
	t.Helper()
	nl, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(nl, family(p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if have, ok := prefixOf(a); !ok || have != p {
			continue
		}
		if p.Addr().Is4() && a.Label != ifname+":herd" {
			t.Errorf("%s has label %q, want %q", p, a.Label, ifname+":herd")
		}
		if p.Addr().Is6() && a.Flags&unix.IFA_F_NODAD == 0 {
			t.Errorf("%s has flags %#x, want nodad", p, a.Flags)
		}
		return
	}
	t.Errorf("%s is not in the address list of %s", p, ifname)
}

// isGratuitousARP reports whether f is a broadcast gratuitous ARP for vip
// from mac, and whether it is a request or a reply.
func isGratuitousARP(f []byte, vip netip.Addr, mac net.HardwareAddr) (string, bool) {
	if len(f) < 42 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_ARP {
		return "", false
	}
	a, ip4 := f[14:42], vip.As4()
	if !bytes.Equal(f[0:6], net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || !bytes.Equal(f[6:12], mac) ||
		!bytes.Equal(a[0:6], []byte{0, 1, 0x08, 0, 6, 4}) ||
		!bytes.Equal(a[8:14], mac) || !bytes.Equal(a[14:18], ip4[:]) || !bytes.Equal(a[24:28], ip4[:]) {
		return "", false
	}
	switch binary.BigEndian.Uint16(a[6:8]) {
	case 1:
		return "request", true
	case 2:
		return "reply", true
	}
	return "", false
}

// isUnsolicitedNA reports whether f is a neighbour advertisement of vip
// from mac to all nodes, with the override flag and mac as the target's
// link-layer address.
func isUnsolicitedNA(f []byte, vip netip.Addr, mac net.HardwareAddr) (string, bool) {
	if len(f) < 86 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IPV6 {
		return "", false
	}
	h, m := f[14:54], f[54:]
	target := vip.As16()
	if !bytes.Equal(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) || !bytes.Equal(f[6:12], mac) ||
		h[6] != unix.IPPROTO_ICMPV6 || h[7] != 255 || !net.IP(h[24:40]).Equal(net.ParseIP("ff02::1")) ||
		m[0] != 136 || m[4]&0x20 == 0 || m[4]&0x40 != 0 || !bytes.Equal(m[8:24], target[:]) ||
		m[24] != 2 || m[25] != 1 || !bytes.Equal(m[26:32], mac) {
		return "", false
	}
	return "advertisement", true
}

// neighbour returns the link-layer address that namespace ns has for addr
// on interface ifname, or nil.
func neighbour(t *testing.T, ns, ifname string, addr netip.Addr) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	inNS(t, ns, func() {
		nl, err := netlink.LinkByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		neighs, err := netlink.NeighList(nl.Attrs().Index, family(addr))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range neighs {
			if n.IP.Equal(addr.AsSlice()) {
				mac = n.HardwareAddr
			}
		}
	})
	return mac
}

// checkConnect checks that a TCP client in l's namespace B reaches a server
// listening on vip in namespace A.
func checkConnect(t *testing.T, l *testLink, vip netip.Addr) {
	t.Helper()
	var ln net.Listener
	inNS(t, l.nsA, func() {
		var err error
		if ln, err = net.Listen("tcp", netip.AddrPortFrom(vip, 0).String()); err != nil {
			t.Fatalf("listen on %s: %v", vip, err)
		}
	})
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		_, err = c.Write([]byte("herd"))
		c.Close()
		served <- err
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})
	var c net.Conn
	inNS(t, l.nsB, func() {
		var err error
		if c, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second); err != nil {
			t.Fatalf("connect from the peer: %v", err)
		}
	})
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "herd" {
		t.Fatalf("read from %s: %q, %v; want \"herd\"", ln.Addr(), got, err)
	}
}

func TestInterfaceFor(t *testing.T) {
	l := newTestLink(t)
	cases := []struct {
		name    string
		p       string
		want    string // the interface, if no error
		wantErr string // a part of the error, if one is expected
	}{
		{name: "ipv4", p: "10.200.0.100/24", want: l.ifA},
		{name: "ipv6", p: "fd00:200::100/64", want: l.ifA},
		{name: "ipv4 single address", p: "10.200.0.100/32", want: l.ifA},
		{name: "ipv6 single address", p: "fd00:200::100/128", want: l.ifA},
		{name: "own address", p: addrA, want: l.ifA},
		{name: "ipv4 unrelated", p: "10.200.9.100/24", wantErr: "no interface has an address in 10.200.9.0/24"},
		{name: "ipv6 unrelated", p: "fd00:201::100/64", wantErr: "no interface has an address in fd00:201::/64"},
		{name: "ipv4 single unrelated", p: "10.200.9.100/32", wantErr: "no interface has a subnet that holds 10.200.9.100"},
		{name: "invalid", p: "10.200.0.0/24", wantErr: "network address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inNS(t, l.nsA, func() {
				got, err := InterfaceFor(netip.MustParsePrefix(tc.p))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("InterfaceFor(%s) = %q, %v; want an error with %q", tc.p, got, err, tc.wantErr)
					}
					return
				}
				if err != nil || got != tc.want {
					t.Fatalf("InterfaceFor(%s) = %q, %v; want %q", tc.p, got, err, tc.want)
				}
			})
		})
	}

	t.Run("ambiguous", func(t *testing.T) {
		runIP(t, "-n", l.nsA, "link", "add", "vc", "type", "veth", "peer", "name", "vd")
		runIP(t, "-n", l.nsA, "addr", "add", "10.200.0.3/24", "dev", "vc")
		inNS(t, l.nsA, func() {
			got, err := InterfaceFor(netip.MustParsePrefix("10.200.0.100/24"))
			if err == nil || !strings.Contains(err.Error(), "interfaces va, vc all have addresses in 10.200.0.0/24") {
				t.Fatalf("InterfaceFor = %q, %v; want an error naming va and vc", got, err)
			}
		})
	})
}

func TestErrors(t *testing.T) {
	l := newTestLink(t)
	vip := netip.MustParsePrefix("10.200.0.100/24")
	own := netip.MustParsePrefix(addrA).Addr()
	// An interface that is down.
	runIP(t, "-n", l.nsA, "link", "add", "vc", "type", "veth", "peer", "name", "vd")
	runIP(t, "-n", l.nsA, "addr", "add", "10.200.1.1/24", "dev", "vc")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	announce := func(ctx context.Context, ifname string, a netip.Addr, count int) func() error {
		return func() error { return Announce(ctx, ifname, a, count, time.Millisecond) }
	}
	cases := []struct {
		name    string
		call    func() error
		wantErr string // a part of the error
		is      error  // an error it must wrap, if not nil
	}{
		{name: "add to missing interface", call: func() error { return Add("nosuch0", vip) },
			wantErr: `interface "nosuch0"`, is: ErrNoInterface},
		{name: "remove from missing interface", call: func() error { return Remove("nosuch0", vip) },
			wantErr: `interface "nosuch0"`, is: ErrNoInterface},
		{name: "has on missing interface", call: func() error { _, err := Has("nosuch0", vip); return err },
			wantErr: `interface "nosuch0"`, is: ErrNoInterface},
		{name: "announce on missing interface", call: announce(context.Background(), "nosuch0", own, 1),
			wantErr: `interface "nosuch0"`, is: ErrNoInterface},
		{name: "no interface", call: func() error { return Add("", vip) }, wantErr: "no interface named"},
		{name: "network address", call: func() error { return Add(l.ifA, netip.MustParsePrefix("10.200.0.0/24")) },
			wantErr: "10.200.0.0 is the network address of 10.200.0.0/24"},
		{name: "zero prefix", call: func() error { return Add(l.ifA, netip.Prefix{}) }, wantErr: "invalid prefix"},
		{name: "ipv6 address there with another length",
			call:    func() error { return Add(l.ifA, netip.MustParsePrefix("fd00:200::1/128")) },
			wantErr: "the address is there as fd00:200::1/64", is: unix.EEXIST},
		{name: "announce on loopback", call: announce(context.Background(), "lo", own, 1),
			wantErr: "lo: not an Ethernet interface"},
		{name: "announce an address not there", call: announce(context.Background(), l.ifA, vip.Addr(), 1),
			wantErr: "announce 10.200.0.100 on va: the address is not on the interface"},
		{name: "announce no times", call: announce(context.Background(), l.ifA, own, 0), wantErr: "count 0"},
		{name: "announce a multicast address", call: announce(context.Background(), l.ifA, netip.MustParseAddr("ff02::1"), 1),
			wantErr: "multicast"},
		{name: "announce cancelled", call: announce(cancelled, l.ifA, own, 1), is: context.Canceled},
		{name: "announce on a down interface", call: announce(context.Background(), "vc", netip.MustParseAddr("10.200.1.1"), 1),
			wantErr: "announce 10.200.1.1 on vc: send", is: unix.ENETDOWN},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			inNS(t, l.nsA, func() { err = tc.call() })
			if err == nil {
				t.Fatalf("no error, want one with %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestCapable(t *testing.T) {
	if err := Capable(); err != nil {
		t.Skipf("the test process lacks capabilities: %v", err)
	}
	l := newTestLink(t)

	// Drop CAP_NET_ADMIN from the effective set of one thread, which then
	// must not run anything else: the goroutine ends without unlocking it,
	// so the runtime ends the thread too.
	type result struct{ capable, add, setup error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		defer func() { done <- r }()
		ns, err := netns.GetFromName(l.nsA)
		if err != nil {
			r.setup = err
			return
		}
		defer ns.Close()
		if r.setup = netns.Set(ns); r.setup != nil {
			return
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if r.setup = unix.Capget(&hdr, &data[0]); r.setup != nil {
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if r.setup = unix.Capset(&hdr, &data[0]); r.setup != nil {
			return
		}
		r.capable = Capable()
		r.add = Add(l.ifA, netip.MustParsePrefix("10.200.0.100/24"))
	}()
	r := <-done
	if r.setup != nil {
		t.Fatalf("drop CAP_NET_ADMIN on a thread in %s: %v", l.nsA, r.setup)
	}
	if r.capable == nil || !strings.Contains(r.capable.Error(), "CAP_NET_ADMIN") || strings.Contains(r.capable.Error(), "CAP_NET_RAW") {
		t.Errorf("Capable without CAP_NET_ADMIN: %v; want an error naming CAP_NET_ADMIN only", r.capable)
	}
	if r.add == nil || !strings.Contains(r.add.Error(), "needs CAP_NET_ADMIN") || !errors.Is(r.add, unix.EPERM) {
		t.Errorf("Add without CAP_NET_ADMIN: %v; want EPERM saying it needs CAP_NET_ADMIN", r.add)
	}
}
