package acl

import (
	"cmp"
	"slices"
	"strings"
)

// Authorizer answers permission questions for one token. It is built by
// Compile, Management or NodeAuthorizer and never changes afterwards, so it
// is safe for concurrent use. The zero value, and a nil *Authorizer, deny
// everything.
type Authorizer struct {
	management bool
	// rules holds, per resource, the merged rules of that resource, most
	// specific first: longer prefixes first, and an exact rule before a
	// prefix rule of the same string. The first rule that matches a name
	// decides.
	rules map[string][]rule
}

// rule is one compiled rule: a prefix, or with exact a whole name, and the
// access it grants.
type rule struct {
	prefix string
	exact  bool
	access Access
}

// matches reports whether r covers name.
func (r rule) matches(name string) bool {
	if r.exact {
		return name == r.prefix
	}
	return strings.HasPrefix(name, r.prefix)
}

// grants reports whether access level have satisfies a request for want:
// Write satisfies Read and Write, Read only Read, Deny nothing.
func grants(have, want Access) bool {
	switch want {
	case Read:
		return have == Read || have == Write
	case Write:
		return have == Write
	}
	return false
}

// precedence ranks access levels for merging rules of equal specificity:
// deny beats write beats read.
func precedence(a Access) int {
	switch a {
	case Read:
		return 1
	case Write:
		return 2
	case Deny:
		return 3
	}
	return 0
}

// ruleKey identifies the rules that Compile merges into one.
type ruleKey struct {
	resource string
	prefix   string
	exact    bool
}

// builder merges rules into an Authorizer.
type builder map[ruleKey]Access

// add merges one rule in, ignoring a rule of an unknown resource or an
// invalid access level. Of rules of the same key, deny beats write beats
// read.
func (b builder) add(resource, prefix string, exact bool, access Access) {
	if !knownResource(resource) || !validAccess(access) {
		return
	}
	k := ruleKey{resource, prefix, exact}
	if have, ok := b[k]; !ok || precedence(access) > precedence(have) {
		b[k] = access
	}
}

// build returns the Authorizer of the merged rules.
func (b builder) build() *Authorizer {
	a := &Authorizer{rules: make(map[string][]rule)}
	for k, access := range b {
		a.rules[k.resource] = append(a.rules[k.resource], rule{prefix: k.prefix, exact: k.exact, access: access})
	}
	for _, rs := range a.rules {
		slices.SortFunc(rs, func(x, y rule) int {
			if c := cmp.Compare(len(y.prefix), len(x.prefix)); c != 0 {
				return c
			}
			if x.exact != y.exact {
				if x.exact {
					return -1
				}
				return 1
			}
			return strings.Compare(x.prefix, y.prefix)
		})
	}
	return a
}

// Compile merges policies into one Authorizer. For a given resource and
// name, the rule with the longest matching prefix wins. Among rules with the
// same resource and prefix, from different policies or repeated in one,
// deny beats write beats read: a deny at equal specificity always vetoes,
// and otherwise the grants add up. A name no rule matches is denied.
//
// Compile does not validate: rules of an unknown resource or with an
// access other than read, write and deny are ignored. Callers validate
// policies when they are stored, with Policy.Validate.
func Compile(policies ...Policy) *Authorizer {
	b := make(builder)
	for _, p := range policies {
		for _, r := range p.Rules {
			b.add(r.Resource, r.Prefix, false, r.Access)
		}
	}
	return b.build()
}

// Management returns an Authorizer that allows everything: read and write
// on every name of every resource.
func Management() *Authorizer {
	return &Authorizer{management: true}
}

// NodeAuthorizer returns what a cluster node's own certificate may do: read
// every name of service, kv and node, as the node's agent needs, and write
// its own node record, the node named exactly name (not other names that
// start with it). A node of role "server" may also read operator
// information. Nothing else is granted: no job access, nothing on acl, no
// operator write. An empty name gets no node write.
func NodeAuthorizer(name, role string) *Authorizer {
	b := make(builder)
	b.add(ResourceService, "", false, Read)
	b.add(ResourceKV, "", false, Read)
	b.add(ResourceNode, "", false, Read)
	if name != "" {
		b.add(ResourceNode, name, true, Write)
	}
	if role == "server" {
		b.add(ResourceOperator, "", false, Read)
	}
	return b.build()
}

// Allow reports whether access to the name of resource is granted. access
// is Read or Write; a request for Read is satisfied by a Write grant. Any
// other access, and an unknown resource, is denied.
func (a *Authorizer) Allow(resource, name string, access Access) bool {
	if a == nil || access != Read && access != Write {
		return false
	}
	if a.management {
		return true
	}
	for _, r := range a.rules[resource] {
		if r.matches(name) {
			return grants(r.access, access)
		}
	}
	return false
}

// AllowAny reports whether access is granted on at least one name of
// resource: whether some rule of that resource, at any prefix, grants it
// after rules of equal prefix are merged. Operations such as creating a
// session, which need kv write somewhere, ask it. access is Read or Write,
// as for Allow.
func (a *Authorizer) AllowAny(resource string, access Access) bool {
	if a == nil || access != Read && access != Write {
		return false
	}
	if a.management {
		return true
	}
	for _, r := range a.rules[resource] {
		if grants(r.access, access) {
			return true
		}
	}
	return false
}

// IsManagement reports whether a is the management Authorizer, which
// allows everything.
func (a *Authorizer) IsManagement() bool {
	return a != nil && a.management
}

// AllowPrefix reports whether access is granted on every name that starts
// with prefix: on prefix itself, and by every more specific rule under it
// (a recursive delete of "app/" needs write on "app/" and must not reach
// into an "app/secret/" that is only readable).
func (a *Authorizer) AllowPrefix(resource, prefix string, access Access) bool {
	if !a.Allow(resource, prefix, access) {
		return false
	}
	if a.management {
		return true
	}
	for _, r := range a.rules[resource] {
		if len(r.prefix) > len(prefix) && strings.HasPrefix(r.prefix, prefix) && !grants(r.access, access) {
			return false
		}
	}
	return true
}
