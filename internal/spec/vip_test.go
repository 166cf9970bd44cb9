package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

func TestParseVIP(t *testing.T) {
	objs, err := Parse([]byte(`kind: vip
name: front
address: 10.9.0.100/24
nodes: [g1, g2]
priority: {g1: 150}
preempt: true
lease: 300ms
---
kind: service
name: web
backends: [{address: 127.0.0.1:8080}]
routes: [{path_prefix: /}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Kind != KindVIP || objs[0].VIP == nil || objs[1].Service == nil {
		t.Fatalf("objects: %+v", objs)
	}
	v := VIPDefaults(*objs[0].VIP)
	if v.Address != "10.9.0.100/24" || v.Lease.D() != 300*time.Millisecond || !v.Preempt || VIPPriority(&v, "g1") != 150 || VIPPriority(&v, "g2") != DefaultVIPPriority {
		t.Fatalf("decoded: %+v", v)
	}
	if d := VIPDefaults(api.VIP{Name: "x"}); d.Lease.D() != DefaultVIPLease || d.Kind != KindVIP {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestValidateVIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		vip  api.VIP
		want string
	}{
		{"no name", api.VIP{Address: "10.0.0.1/24"}, "name: required"},
		{"bad name", api.VIP{Name: "Front", Address: "10.0.0.1/24"}, `name: "Front" must be`},
		{"no address", api.VIP{Name: "a"}, "address: required"},
		{"no prefix", api.VIP{Name: "a", Address: "10.0.0.1"}, `address: "10.0.0.1" is not an address with a prefix length`},
		{"loopback", api.VIP{Name: "a", Address: "127.0.0.5/8"}, "is not a unicast address that can float"},
		{"network address", api.VIP{Name: "a", Address: "10.0.0.0/24"}, "network or broadcast"},
		{"broadcast", api.VIP{Name: "a", Address: "10.0.0.255/24"}, "network or broadcast"},
		{"interface", api.VIP{Name: "a", Address: "10.0.0.1/24", Interface: "eth0:1"}, "interface:"},
		{"node twice", api.VIP{Name: "a", Address: "10.0.0.1/24", Nodes: []string{"g1", "g1"}}, `nodes[1]: "g1" is listed twice`},
		{"priority range", api.VIP{Name: "a", Address: "10.0.0.1/24", Priority: map[string]int{"g1": 300}}, "priority.g1: 300 is not between 1 and 255"},
		{"priority of a stranger", api.VIP{Name: "a", Address: "10.0.0.1/24", Nodes: []string{"g1"}, Priority: map[string]int{"g2": 10}}, `priority.g2: "g2" is not one of the nodes`},
		{"lease", api.VIP{Name: "a", Address: "10.0.0.1/24", Lease: api.Duration(time.Minute)}, "lease: 1m0s is not between 100ms and 10s"},
		{"kind", api.VIP{Kind: "service", Name: "a", Address: "10.0.0.1/24"}, `kind: "service" is not a known kind`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateVIP(&tc.vip)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	for _, ok := range []api.VIP{
		{Name: "a", Address: "10.0.0.100/24"},
		{Name: "b", Address: "192.168.1.7/32", Interface: "eth0"},
		{Name: "c", Address: "fd00::100/64", Labels: map[string]string{"role": "edge"}},
	} {
		if err := ValidateVIP(&ok); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestVIPEligible(t *testing.T) {
	v := &api.VIP{Nodes: []string{"g1", "g2"}, Labels: map[string]string{"edge": "yes"}}
	for _, tc := range []struct {
		node   string
		labels map[string]string
		want   bool
	}{
		{"g1", map[string]string{"edge": "yes"}, true},
		{"g1", nil, false},
		{"g3", map[string]string{"edge": "yes"}, false},
	} {
		if got := VIPEligible(v, tc.node, tc.labels); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.node, tc.labels, got, tc.want)
		}
	}
	if !VIPEligible(&api.VIP{}, "any", nil) {
		t.Error("a VIP without nodes or labels refuses a node")
	}
}

func TestParseVIPDuplicateAndUnknownField(t *testing.T) {
	_, err := Parse([]byte("kind: vip\nname: a\naddress: 10.0.0.9/24\n---\nkind: vip\nname: a\naddress: 10.0.0.8/24\n---\nkind: vip\nname: b\naddres: 10.0.0.7/24\n"))
	if err == nil || !strings.Contains(err.Error(), `document 2 (line 5): vip "a": name: "a" is already defined in document 1`) || !strings.Contains(err.Error(), "addres: unknown field") {
		t.Fatalf("got %v", err)
	}
}
