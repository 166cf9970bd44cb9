package netif

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    string // the parsed prefix, if no error
		wantErr string // a part of the error, if one is expected
	}{
		{name: "ipv4", in: "10.200.0.100/24", want: "10.200.0.100/24"},
		{name: "ipv6", in: "fd00:200::100/64", want: "fd00:200::100/64"},
		{name: "bare ipv4", in: "10.200.0.100", want: "10.200.0.100/32"},
		{name: "bare ipv6", in: "fd00:200::100", want: "fd00:200::100/128"},
		{name: "ipv4 /31 low end", in: "10.200.0.0/31", want: "10.200.0.0/31"},
		{name: "ipv4 /31 high end", in: "10.200.0.1/31", want: "10.200.0.1/31"},
		{name: "ipv6 /127", in: "fd00:200::/127", want: "fd00:200::/127"},
		{name: "empty", in: "", wantErr: "floating address"},
		{name: "garbage", in: "vip", wantErr: `"vip"`},
		{name: "prefix too long", in: "10.200.0.100/33", wantErr: "10.200.0.100/33"},
		{name: "network address", in: "10.200.0.0/24", wantErr: "10.200.0.0 is the network address of 10.200.0.0/24"},
		{name: "broadcast address", in: "10.200.0.255/24", wantErr: "10.200.0.255 is the broadcast address of 10.200.0.0/24"},
		{name: "ipv6 subnet-router anycast", in: "fd00:200::/64", wantErr: "fd00:200:: is the network address"},
		{name: "zero length", in: "10.200.0.100/0", wantErr: "prefix length 0"},
		{name: "unspecified", in: "0.0.0.0", wantErr: "unspecified"},
		{name: "ipv6 unspecified", in: "::", wantErr: "unspecified"},
		{name: "loopback", in: "127.0.0.2/8", wantErr: "loopback"},
		{name: "multicast", in: "ff02::1", wantErr: "multicast"},
		{name: "ipv4 link-local", in: "169.254.1.1/16", wantErr: "link-local"},
		{name: "ipv6 link-local", in: "fe80::1/64", wantErr: "link-local"},
		{name: "zone", in: "fd00:200::100%eth0", wantErr: "zone"},
		{name: "zone with prefix", in: "fd00:200::100%eth0/64", wantErr: "floating address"},
		{name: "ipv4-mapped", in: "::ffff:10.200.0.100/120", wantErr: "write it as 10.200.0.100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePrefix(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParsePrefix(%q) = %s, want an error with %q", tc.in, p, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePrefix(%q) error %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrefix(%q): %v", tc.in, err)
			}
			if p.String() != tc.want {
				t.Fatalf("ParsePrefix(%q) = %s, want %s", tc.in, p, tc.want)
			}
		})
	}
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.200.0.100/24", "fd00:200::100/64", "10.200.0.100", "10.200.0.0/24",
		"10.200.0.255/24", "::ffff:10.0.0.1/104", "fe80::1%eth0", "1.2.3.4/0", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		// An accepted prefix passes the checks Add and the others repeat,
		// and its text form means the same.
		if err := checkPrefix(p); err != nil {
			t.Fatalf("ParsePrefix(%q) = %s, which checkPrefix refuses: %v", s, p, err)
		}
		again, err := ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %s, but ParsePrefix(%q) = %s, %v", s, p, p.String(), again, err)
		}
		if ref, err := netip.ParsePrefix(p.String()); err != nil || ref != p {
			t.Fatalf("ParsePrefix(%q) = %s, but netip.ParsePrefix gives %s, %v", s, p, ref, err)
		}
	})
}
