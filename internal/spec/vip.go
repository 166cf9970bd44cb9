package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herd-cluster/herd/api"
)

// KindVIP is the kind of a floating address in apply files.
const KindVIP = "vip"

// VIP lease bounds and default.
const (
	DefaultVIPLease = 800 * time.Millisecond
	MinVIPLease     = 100 * time.Millisecond
	MaxVIPLease     = 10 * time.Second
	// DefaultVIPPriority is a node's priority when the VIP names none.
	DefaultVIPPriority = 100
)

// ValidateVIP checks one VIP and returns every problem it finds, each a
// *FieldError naming the field, joined in field order; nil when v is
// valid. Kind may be empty (the JSON API allows it) or "vip".
func ValidateVIP(p *api.VIP) error {
	if p == nil {
		return &FieldError{Msg: "no vip"}
	}
	v := &validator{}
	switch {
	case p.Name == "":
		v.add("name", "required")
	case !validName(p.Name):
		v.add("name", "%q must be 1-%d lower-case letters, digits and '-', starting and ending with a letter or digit", p.Name, maxNameLen)
	}
	if p.Kind != "" && p.Kind != KindVIP {
		v.add("kind", "%q is not a known kind (want one of: %s)", p.Kind, strings.Join(kinds, ", "))
	}
	if p.Address == "" {
		v.add("address", "required: an address with its prefix length, such as 10.0.0.100/24")
	} else if pfx, err := netip.ParsePrefix(p.Address); err != nil {
		v.add("address", "%q is not an address with a prefix length, such as 10.0.0.100/24 or fd00::100/64", p.Address)
	} else {
		a := pfx.Addr()
		switch {
		case a.Zone() != "":
			v.add("address", "%q: an address with a zone cannot float", p.Address)
		case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
			v.add("address", "%q is not a unicast address that can float between nodes", p.Address)
		case a.Is4() && pfx.Bits() < 32 && (a == pfx.Masked().Addr() || isBroadcast(pfx)):
			v.add("address", "%q is the network or broadcast address of its subnet", p.Address)
		}
	}
	if p.Interface != "" && !validInterface(p.Interface) {
		v.add("interface", "%q is not an interface name (1-15 characters, no '/', ':' or white space)", p.Interface)
	}
	seen := map[string]bool{}
	for i, n := range p.Nodes {
		switch {
		case n == "":
			v.add(fmt.Sprintf("nodes[%d]", i), "empty node name")
		case seen[n]:
			v.add(fmt.Sprintf("nodes[%d]", i), "%q is listed twice", n)
		}
		seen[n] = true
	}
	for _, k := range sortedKeys(p.Labels) {
		if k == "" {
			v.add("labels", "empty label name")
		}
	}
	for _, n := range sortedKeys(p.Priority) {
		pr := p.Priority[n]
		switch {
		case pr < 1 || pr > 255:
			v.add("priority."+n, "%d is not between 1 and 255", pr)
		case len(p.Nodes) > 0 && !seen[n]:
			v.add("priority."+n, "%q is not one of the nodes", n)
		}
	}
	if l := p.Lease.D(); l != 0 && (l < MinVIPLease || l > MaxVIPLease) {
		v.add("lease", "%s is not between %s and %s", l, MinVIPLease, MaxVIPLease)
	}
	return v.err()
}

// VIPDefaults returns p with its defaults filled in.
func VIPDefaults(p api.VIP) api.VIP {
	p.Kind = KindVIP
	if p.Lease == 0 {
		p.Lease = api.Duration(DefaultVIPLease)
	}
	return p
}

// VIPEligible reports whether a node (its name and labels) may hold p.
func VIPEligible(p *api.VIP, node string, labels map[string]string) bool {
	if len(p.Nodes) > 0 && !slices.Contains(p.Nodes, node) {
		return false
	}
	for k, want := range p.Labels {
		if labels[k] != want {
			return false
		}
	}
	return true
}

// VIPPriority is a node's priority for p.
func VIPPriority(p *api.VIP, node string) int {
	if pr, ok := p.Priority[node]; ok {
		return pr
	}
	return DefaultVIPPriority
}

func isBroadcast(p netip.Prefix) bool {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	return v&host == host
}

func validInterface(s string) bool {
	if len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n")
}
