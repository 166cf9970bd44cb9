package main

import (
	"testing"
)

// TestVIPCommands applies a VIP with herd apply, lists and shows it,
// refuses a bad one naming the field, and removes it.
func TestVIPCommands(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	f := writeFile(t, "vip.yaml", "kind: vip\nname: front\naddress: 10.200.7.100/24\nnodes: ["+n.Name+"]\npriority: {"+n.Name+": 200}\nlease: 500ms\n")
	r := cli(t, n, "apply", "-f", f)
	wantCode(t, r, 0)
	wantContains(t, "apply", r.stdout, "vip/front applied")
	r = cli(t, n, "vip", "ls")
	wantCode(t, r, 0)
	wantContains(t, "vip ls", r.stdout, "NAME", "front", "10.200.7.100/24", "500ms")
	r = cli(t, n, "vip", "show", "front", "-o", "json")
	wantCode(t, r, 0)
	wantContains(t, "vip show", r.stdout, `"address": "10.200.7.100/24"`, `"priority"`)

	bad := writeFile(t, "bad.yaml", "kind: vip\nname: edge\naddress: 10.200.7.0/24\nlease: 1m\n")
	r = cli(t, n, "apply", "-f", bad)
	wantCode(t, r, 1)
	wantContains(t, "bad apply", r.stderr, "nothing applied", "address: \"10.200.7.0/24\" is the network or broadcast address", "lease: 1m0s is not between")

	wantCode(t, cli(t, n, "vip", "rm", "front"), 0)
	r = cli(t, n, "vip", "show", "front")
	wantCode(t, r, 1)
	wantContains(t, "show removed", r.stderr, `no vip "front"`)
}
