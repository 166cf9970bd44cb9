package acl

import (
	"strings"
	"testing"
)

// Fuzz inputs are decoded into rules over small alphabets so that prefixes
// of different rules often nest and collide.
var (
	fuzzResources = []string{ResourceKV, ResourceService, ResourceNode, ResourceJob, ResourceACL, ResourceOperator, "kvv", ""}
	fuzzAccesses  = []Access{Read, Write, Deny, "rw", ""}
	fuzzAlphabet  = "ab/"
)

// byteReader hands out the bytes of a fuzz input, then zeros.
type byteReader []byte

func (r *byteReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return int(b)
}

// decodePolicies turns data into up to three policies of up to 16 rules in
// all: per rule a policy index, a resource, an access level and a prefix of
// up to three characters of fuzzAlphabet.
func decodePolicies(data []byte) []Policy {
	r := byteReader(data)
	policies := []Policy{{Name: "p0"}, {Name: "p1"}, {Name: "p2"}}
	for n := 0; len(r) > 0 && n < 16; n++ {
		p := r.next() % len(policies)
		res := fuzzResources[r.next()%len(fuzzResources)]
		acc := fuzzAccesses[r.next()%len(fuzzAccesses)]
		var prefix strings.Builder
		for range r.next() % 4 {
			prefix.WriteByte(fuzzAlphabet[r.next()%len(fuzzAlphabet)])
		}
		policies[p].Rules = append(policies[p].Rules, Rule{Resource: res, Prefix: prefix.String(), Access: acc})
	}
	return policies
}

// refAllow is the brute-force reference for Allow: among all valid rules of
// resource whose prefix starts name, the longest prefix decides; at equal
// length deny beats write beats read.
func refAllow(policies []Policy, resource, name string, access Access) bool {
	if access != Read && access != Write {
		return false
	}
	best := -1
	var decided Access
	for _, p := range policies {
		for _, r := range p.Rules {
			if r.Resource != resource || !strings.HasPrefix(name, r.Prefix) {
				continue
			}
			switch r.Resource {
			case "kv", "service", "node", "job", "acl", "operator":
			default:
				continue
			}
			if r.Access != "read" && r.Access != "write" && r.Access != "deny" {
				continue
			}
			switch {
			case len(r.Prefix) > best:
				best, decided = len(r.Prefix), r.Access
			case len(r.Prefix) == best:
				if r.Access == "deny" || r.Access == "write" && decided == "read" {
					decided = r.Access
				}
			}
		}
	}
	switch decided {
	case "write":
		return true
	case "read":
		return access == "read"
	}
	return false
}

// refAllowAny is the brute-force reference for AllowAny: whether refAllow
// grants access on some name. Every name that can win is the prefix of one
// of the rules, the rule of that prefix being the longest to match it.
func refAllowAny(policies []Policy, resource string, access Access) bool {
	for _, p := range policies {
		for _, r := range p.Rules {
			if r.Resource == resource && refAllow(policies, resource, r.Prefix, access) {
				return true
			}
		}
	}
	return false
}

// fuzzNames returns every string of fuzzAlphabet up to four characters long.
func fuzzNames() []string {
	names := []string{""}
	level := []string{""}
	for range 4 {
		var next []string
		for _, s := range level {
			for i := range len(fuzzAlphabet) {
				next = append(next, s+fuzzAlphabet[i:i+1])
			}
		}
		names = append(names, next...)
		level = next
	}
	return names
}

// FuzzAllow compares Compile's Authorizer with the brute-force reference
// over random policies, for every short name of the alphabet and the
// prefixes of a random name.
func FuzzAllow(f *testing.F) {
	seeds := []struct {
		data []byte
		name string
	}{
		{nil, ""},
		{[]byte{0, 0, 0, 0}, "a"},
		// kv "" read, kv "a/" write (policy 0).
		{[]byte{0, 0, 0, 0, 0, 0, 1, 2, 0, 2}, "a/b"},
		// kv "a" write (policy 0), kv "a" deny (policy 1).
		{[]byte{0, 0, 1, 1, 0, 1, 0, 2, 1, 0}, "ab"},
		// kv "a" read (policy 0), kv "a" write (policy 2).
		{[]byte{0, 0, 0, 1, 0, 2, 0, 1, 1, 0}, "aa"},
		// service "" deny, service "ab" write, node "b" read, invalid rules.
		{[]byte{0, 1, 2, 0, 1, 1, 1, 2, 0, 1, 0, 2, 0, 1, 1, 0, 6, 1, 0, 0, 0, 3, 0}, "ab/"},
		{[]byte("the quick brown fox jumps over the lazy dog"), "b/a"},
		{[]byte{255, 254, 253, 252, 251, 250, 249, 248, 247, 246, 245, 244}, "\xff"},
	}
	for _, s := range seeds {
		f.Add(s.data, s.name)
	}
	names := fuzzNames()
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		policies := decodePolicies(data)
		for _, p := range policies {
			_ = p.Validate() // must not panic on any input
		}
		a := Compile(policies...)
		if a.IsManagement() {
			t.Fatal("Compile made a management Authorizer")
		}
		extra := make([]string, 0, len(name)+1)
		for i := range len(name) + 1 {
			extra = append(extra, name[:i])
		}
		for _, res := range fuzzResources {
			for _, access := range []Access{Read, Write, Deny} {
				for _, n := range append(names[:len(names):len(names)], extra...) {
					if got, want := a.Allow(res, n, access), refAllow(policies, res, n, access); got != want {
						t.Fatalf("Allow(%q, %q, %q) = %v, reference %v; policies %+v", res, n, access, got, want, policies)
					}
				}
				if got, want := a.AllowAny(res, access), refAllowAny(policies, res, access); got != want {
					t.Fatalf("AllowAny(%q, %q) = %v, reference %v; policies %+v", res, access, got, want, policies)
				}
			}
		}
	})
}
