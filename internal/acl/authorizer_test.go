package acl

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// check is one question to an Authorizer and its expected answer.
type check struct {
	resource, name string
	access         Access
	want           bool
}

func (c check) String() string {
	return fmt.Sprintf("Allow(%q, %q, %q)", c.resource, c.name, c.access)
}

// pol makes a policy of rules under a throwaway name.
func pol(rules ...Rule) Policy {
	return Policy{Name: "p", Rules: rules}
}

func TestCompileAllow(t *testing.T) {
	tests := []struct {
		name     string
		policies []Policy
		checks   []check
	}{
		{
			name: "longest prefix wins",
			policies: []Policy{pol(
				Rule{Resource: ResourceKV, Access: Read},
				Rule{Resource: ResourceKV, Prefix: "app/", Access: Write},
			)},
			checks: []check{
				{ResourceKV, "app/x", Write, true},
				{ResourceKV, "app/x", Read, true},
				{ResourceKV, "app/", Write, true},
				{ResourceKV, "app", Write, false},
				{ResourceKV, "app", Read, true},
				{ResourceKV, "other/x", Read, true},
				{ResourceKV, "other/x", Write, false},
				{ResourceKV, "", Read, true},
				{ResourceKV, "", Write, false},
			},
		},
		{
			name: "order of rules does not matter",
			policies: []Policy{pol(
				Rule{Resource: ResourceKV, Prefix: "app/", Access: Write},
				Rule{Resource: ResourceKV, Access: Read},
			)},
			checks: []check{
				{ResourceKV, "app/x", Write, true},
				{ResourceKV, "other/x", Write, false},
				{ResourceKV, "other/x", Read, true},
			},
		},
		{
			name: "longer deny beats shorter write",
			policies: []Policy{pol(
				Rule{Resource: ResourceKV, Prefix: "app/", Access: Write},
				Rule{Resource: ResourceKV, Prefix: "app/secret/", Access: Deny},
			)},
			checks: []check{
				{ResourceKV, "app/x", Write, true},
				{ResourceKV, "app/secret/x", Write, false},
				{ResourceKV, "app/secret/x", Read, false},
				{ResourceKV, "app/secret", Read, true},
			},
		},
		{
			name: "longer write beats shorter deny",
			policies: []Policy{pol(
				Rule{Resource: ResourceKV, Access: Deny},
				Rule{Resource: ResourceKV, Prefix: "pub/", Access: Write},
			)},
			checks: []check{
				{ResourceKV, "pub/x", Write, true},
				{ResourceKV, "x", Read, false},
			},
		},
		{
			name: "longer deny across policies",
			policies: []Policy{
				pol(Rule{Resource: ResourceService, Access: Write}),
				pol(Rule{Resource: ResourceService, Prefix: "db", Access: Deny}),
			},
			checks: []check{
				{ResourceService, "web", Write, true},
				{ResourceService, "db", Read, false},
				{ResourceService, "db-replica", Read, false},
			},
		},
		{
			name: "equal prefix: deny beats write",
			policies: []Policy{
				pol(Rule{Resource: ResourceKV, Prefix: "app/", Access: Write}),
				pol(Rule{Resource: ResourceKV, Prefix: "app/", Access: Deny}),
			},
			checks: []check{
				{ResourceKV, "app/x", Write, false},
				{ResourceKV, "app/x", Read, false},
			},
		},
		{
			name: "equal prefix: deny beats write, other order",
			policies: []Policy{
				pol(Rule{Resource: ResourceKV, Prefix: "app/", Access: Deny}),
				pol(Rule{Resource: ResourceKV, Prefix: "app/", Access: Write}),
			},
			checks: []check{
				{ResourceKV, "app/x", Write, false},
				{ResourceKV, "app/x", Read, false},
			},
		},
		{
			name: "equal prefix: deny beats read",
			policies: []Policy{
				pol(Rule{Resource: ResourceJob, Access: Read}),
				pol(Rule{Resource: ResourceJob, Access: Deny}),
			},
			checks: []check{{ResourceJob, "web", Read, false}},
		},
		{
			name: "equal prefix: write beats read",
			policies: []Policy{
				pol(Rule{Resource: ResourceNode, Prefix: "n", Access: Write}),
				pol(Rule{Resource: ResourceNode, Prefix: "n", Access: Read}),
			},
			checks: []check{
				{ResourceNode, "n1", Write, true},
				{ResourceNode, "n1", Read, true},
			},
		},
		{
			name:     "read does not grant write",
			policies: []Policy{pol(Rule{Resource: ResourceNode, Access: Read})},
			checks: []check{
				{ResourceNode, "n1", Read, true},
				{ResourceNode, "n1", Write, false},
			},
		},
		{
			name:     "write grants read",
			policies: []Policy{pol(Rule{Resource: ResourceJob, Prefix: "web", Access: Write})},
			checks: []check{
				{ResourceJob, "web-1", Read, true},
				{ResourceJob, "web-1", Write, true},
				{ResourceJob, "api", Read, false},
			},
		},
		{
			name:     "resources are separate",
			policies: []Policy{pol(Rule{Resource: ResourceKV, Access: Write})},
			checks: []check{
				{ResourceKV, "x", Write, true},
				{ResourceService, "x", Read, false},
				{ResourceNode, "x", Read, false},
				{ResourceJob, "x", Read, false},
				{ResourceACL, "", Read, false},
				{ResourceOperator, "", Read, false},
			},
		},
		{
			name: "unknown resource denied",
			policies: []Policy{pol(
				Rule{Resource: "kvv", Access: Write},
				Rule{Resource: ResourceKV, Access: Write},
			)},
			checks: []check{
				{"kvv", "x", Read, false},
				{"", "x", Read, false},
				{"KV", "x", Read, false},
				{ResourceKV, "x", Write, true},
			},
		},
		{
			name:     "invalid access ignored",
			policies: []Policy{pol(Rule{Resource: ResourceKV, Access: "rw"}, Rule{Resource: ResourceKV, Prefix: "a", Access: "WRITE"})},
			checks: []check{
				{ResourceKV, "x", Read, false},
				{ResourceKV, "a", Read, false},
			},
		},
		{
			name:     "asking for deny or garbage is refused",
			policies: []Policy{pol(Rule{Resource: ResourceKV, Access: Write})},
			checks: []check{
				{ResourceKV, "x", Deny, false},
				{ResourceKV, "x", "", false},
				{ResourceKV, "x", "admin", false},
			},
		},
		{
			name: "acl and operator",
			policies: []Policy{pol(
				Rule{Resource: ResourceACL, Access: Read},
				Rule{Resource: ResourceOperator, Access: Write},
			)},
			checks: []check{
				{ResourceACL, "", Read, true},
				{ResourceACL, "", Write, false},
				{ResourceOperator, "", Write, true},
			},
		},
		{
			name:     "prefixes compare bytes",
			policies: []Policy{pol(Rule{Resource: ResourceKV, Prefix: "ключ", Access: Write})},
			checks: []check{
				{ResourceKV, "ключи", Write, true},
				{ResourceKV, "клю", Write, false},
				{ResourceKV, "КЛЮЧ", Write, false},
			},
		},
		{
			name:   "no policies",
			checks: []check{{ResourceKV, "", Read, false}, {ResourceACL, "", Read, false}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Compile(tc.policies...)
			if a.IsManagement() {
				t.Error("IsManagement() = true")
			}
			for _, c := range tc.checks {
				if got := a.Allow(c.resource, c.name, c.access); got != c.want {
					t.Errorf("%v = %v, want %v", c, got, c.want)
				}
			}
		})
	}
}

func TestZeroAuthorizerDenies(t *testing.T) {
	var zero Authorizer
	var nilAuth *Authorizer
	for _, a := range []*Authorizer{&zero, nilAuth} {
		for _, r := range slices.Concat(Resources, []string{"bogus"}) {
			for _, access := range []Access{Read, Write, Deny} {
				if a.Allow(r, "", access) || a.Allow(r, "x", access) {
					t.Errorf("%v: Allow(%q, _, %q) = true", a, r, access)
				}
				if a.AllowAny(r, access) {
					t.Errorf("%v: AllowAny(%q, %q) = true", a, r, access)
				}
			}
		}
		if a.IsManagement() {
			t.Errorf("%v: IsManagement() = true", a)
		}
	}
}

func TestManagement(t *testing.T) {
	a := Management()
	if !a.IsManagement() {
		t.Error("IsManagement() = false")
	}
	for _, r := range Resources {
		for _, name := range []string{"", "x", "app/secret"} {
			for _, access := range []Access{Read, Write} {
				if !a.Allow(r, name, access) {
					t.Errorf("Allow(%q, %q, %q) = false", r, name, access)
				}
			}
		}
		if !a.AllowAny(r, Write) || !a.AllowAny(r, Read) {
			t.Errorf("AllowAny(%q, _) = false", r)
		}
	}
	if a.Allow(ResourceKV, "x", Deny) || a.Allow(ResourceKV, "x", "") {
		t.Error("Allow with an access other than read or write = true")
	}
	// A compiled policy granting everything is still not management.
	all := make([]Rule, 0, len(Resources))
	for _, r := range Resources {
		all = append(all, Rule{Resource: r, Access: Write})
	}
	if Compile(pol(all...)).IsManagement() {
		t.Error("Compile(write on all).IsManagement() = true")
	}
}

func TestAllowAny(t *testing.T) {
	tests := []struct {
		name     string
		policies []Policy
		resource string
		access   Access
		want     bool
	}{
		{name: "write at some prefix", policies: []Policy{pol(
			Rule{Resource: ResourceKV, Access: Read},
			Rule{Resource: ResourceKV, Prefix: "sessions/", Access: Write},
		)}, resource: ResourceKV, access: Write, want: true},
		{name: "only read", policies: []Policy{pol(Rule{Resource: ResourceKV, Access: Read})},
			resource: ResourceKV, access: Write},
		{name: "read from write", policies: []Policy{pol(Rule{Resource: ResourceKV, Prefix: "a", Access: Write})},
			resource: ResourceKV, access: Read, want: true},
		{name: "only deny", policies: []Policy{pol(Rule{Resource: ResourceKV, Access: Deny})},
			resource: ResourceKV, access: Read},
		{name: "write vetoed by deny at equal prefix", policies: []Policy{
			pol(Rule{Resource: ResourceKV, Prefix: "a/", Access: Write}),
			pol(Rule{Resource: ResourceKV, Prefix: "a/", Access: Deny}),
		}, resource: ResourceKV, access: Write},
		{name: "write under a shorter deny", policies: []Policy{pol(
			Rule{Resource: ResourceKV, Access: Deny},
			Rule{Resource: ResourceKV, Prefix: "a/", Access: Write},
		)}, resource: ResourceKV, access: Write, want: true},
		{name: "write partly shadowed by a longer deny", policies: []Policy{pol(
			Rule{Resource: ResourceKV, Prefix: "a/", Access: Write},
			Rule{Resource: ResourceKV, Prefix: "a/b", Access: Deny},
		)}, resource: ResourceKV, access: Write, want: true},
		{name: "other resource", policies: []Policy{pol(Rule{Resource: ResourceService, Access: Write})},
			resource: ResourceKV, access: Read},
		{name: "unknown resource", policies: []Policy{pol(Rule{Resource: "kvv", Access: Write})},
			resource: "kvv", access: Read},
		{name: "asking for deny", policies: []Policy{pol(Rule{Resource: ResourceKV, Access: Deny})},
			resource: ResourceKV, access: Deny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Compile(tc.policies...).AllowAny(tc.resource, tc.access); got != tc.want {
				t.Errorf("AllowAny(%q, %q) = %v, want %v", tc.resource, tc.access, got, tc.want)
			}
		})
	}
}

func TestNodeAuthorizer(t *testing.T) {
	common := []check{
		{ResourceNode, "web-1", Write, true},
		{ResourceNode, "web-1", Read, true},
		{ResourceNode, "web-1x", Write, false},
		{ResourceNode, "web-10", Write, false},
		{ResourceNode, "web-", Write, false},
		{ResourceNode, "", Write, false},
		{ResourceNode, "web-2", Write, false},
		{ResourceNode, "web-2", Read, true},
		{ResourceNode, "web-1x", Read, true},
		{ResourceService, "api", Read, true},
		{ResourceService, "api", Write, false},
		{ResourceKV, "any/key", Read, true},
		{ResourceKV, "any/key", Write, false},
		{ResourceKV, "web-1", Write, false},
		{ResourceJob, "web", Read, false},
		{ResourceACL, "", Read, false},
		{ResourceACL, "", Write, false},
		{ResourceOperator, "", Write, false},
	}
	tests := []struct {
		role   string
		checks []check
	}{
		{role: "server", checks: append(common[:len(common):len(common)], check{ResourceOperator, "", Read, true})},
		{role: "client", checks: append(common[:len(common):len(common)], check{ResourceOperator, "", Read, false})},
		{role: "", checks: append(common[:len(common):len(common)], check{ResourceOperator, "", Read, false})},
		{role: "Server", checks: append(common[:len(common):len(common)], check{ResourceOperator, "", Read, false})},
	}
	for _, tc := range tests {
		t.Run("role "+tc.role, func(t *testing.T) {
			a := NodeAuthorizer("web-1", tc.role)
			if a.IsManagement() {
				t.Error("IsManagement() = true")
			}
			for _, c := range tc.checks {
				if got := a.Allow(c.resource, c.name, c.access); got != c.want {
					t.Errorf("%v = %v, want %v", c, got, c.want)
				}
			}
			if !a.AllowAny(ResourceNode, Write) {
				t.Error("AllowAny(node, write) = false")
			}
			for _, r := range []string{ResourceKV, ResourceService, ResourceJob, ResourceACL, ResourceOperator} {
				if a.AllowAny(r, Write) {
					t.Errorf("AllowAny(%q, write) = true", r)
				}
			}
		})
	}

	t.Run("empty name", func(t *testing.T) {
		a := NodeAuthorizer("", "server")
		if a.Allow(ResourceNode, "", Write) || a.AllowAny(ResourceNode, Write) {
			t.Error("node write granted for an empty node name")
		}
		if !a.Allow(ResourceNode, "x", Read) {
			t.Error("node read denied")
		}
	})
}

// TestExactBeatsPrefixOfSameString checks that an exact rule is more
// specific than a prefix rule of the same string, whichever way round their
// grants are.
func TestExactBeatsPrefixOfSameString(t *testing.T) {
	b := make(builder)
	b.add(ResourceNode, "n", false, Write)
	b.add(ResourceNode, "n", true, Deny)
	a := b.build()
	if a.Allow(ResourceNode, "n", Read) {
		t.Error(`exact deny on "n" lost to prefix write`)
	}
	if !a.Allow(ResourceNode, "nx", Write) {
		t.Error(`prefix write on "n" does not cover "nx"`)
	}

	b = make(builder)
	b.add(ResourceNode, "n", false, Deny)
	b.add(ResourceNode, "n", true, Write)
	a = b.build()
	if !a.Allow(ResourceNode, "n", Write) {
		t.Error(`exact write on "n" lost to prefix deny`)
	}
	if a.Allow(ResourceNode, "nx", Read) {
		t.Error(`exact write on "n" covers "nx"`)
	}
}

func TestAuthorizerConcurrentUse(t *testing.T) {
	a := Compile(pol(
		Rule{Resource: ResourceKV, Access: Read},
		Rule{Resource: ResourceKV, Prefix: "app/", Access: Write},
	))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				name := fmt.Sprintf("app/%d/%d", i, j)
				if !a.Allow(ResourceKV, name, Write) || a.Allow(ResourceKV, name[1:], Write) {
					t.Errorf("wrong answer for %q", name)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestAllowPrefix(t *testing.T) {
	a := Compile(Policy{Name: "p", Rules: []Rule{
		{Resource: ResourceKV, Prefix: "", Access: Write},
		{Resource: ResourceKV, Prefix: "app/secret/", Access: Read},
		{Resource: ResourceKV, Prefix: "web/", Access: Deny},
	}})
	cases := []struct {
		prefix string
		want   bool
	}{
		{"", false},             // reaches app/secret/ and web/
		{"app/", false},         // reaches app/secret/
		{"app/secret/x", false}, // only readable
		{"app/other/", true},
		{"db/", true},
		{"web/", false},
	}
	for _, c := range cases {
		if got := a.AllowPrefix(ResourceKV, c.prefix, Write); got != c.want {
			t.Errorf("AllowPrefix(kv, %q, write) = %v, want %v", c.prefix, got, c.want)
		}
	}
	if !Management().AllowPrefix(ResourceKV, "", Write) {
		t.Error("management denied a prefix")
	}
	if (&Authorizer{}).AllowPrefix(ResourceKV, "x", Read) {
		t.Error("zero authorizer allowed a prefix")
	}
}
