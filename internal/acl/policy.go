// Package acl is herd's access control model: policies made of rules, the
// tokens that carry them, and the Authorizer that answers "may this token do
// X to Y".
//
// A Rule grants an Access (deny, read or write) on every name of one
// resource (kv keys, services, nodes, jobs, the ACL system itself, operator
// functions) that starts with its prefix. A Policy is a named set of rules;
// Compile merges the policies of a token into an Authorizer, in which the
// rule with the longest matching prefix decides, and at equal prefix deny
// beats write beats read. Write implies read. A name no rule covers is
// denied.
//
// A Token is the stored shape of an API credential: a public accessor id,
// the sha256 of its secret (the secret itself is shown once, by NewToken,
// and never stored), and the names of its policies or the management flag.
//
// The package is pure: it does no I/O and keeps no state. Looking tokens
// and policies up is the caller's business.
package acl

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Access is a level of access a rule grants. Levels are ordered
// Deny < Read < Write, and Write implies Read.
type Access string

// The access levels.
const (
	// Deny grants nothing, and overrides any shorter prefix that would.
	Deny Access = "deny"
	// Read grants reading.
	Read Access = "read"
	// Write grants reading and writing.
	Write Access = "write"
)

// The resources a rule can name. The comment of each says what the names of
// that resource are.
const (
	ResourceKV       = "kv"       // names: keys
	ResourceService  = "service"  // names: service names
	ResourceNode     = "node"     // names: node names
	ResourceJob      = "job"      // names: job names
	ResourceACL      = "acl"      // names: "" (policies and tokens); also join tokens
	ResourceOperator = "operator" // names: "" (raft, keyring, cluster-wide operations)
)

// Resources lists the resources a rule can name, in the order above.
var Resources = []string{
	ResourceKV,
	ResourceService,
	ResourceNode,
	ResourceJob,
	ResourceACL,
	ResourceOperator,
}

// maxPrefixLen is the longest prefix, in bytes, a rule may have.
const maxPrefixLen = 1024

// managementName is the policy name reserved for the built-in
// management privilege; no stored policy may take it.
const managementName = "management"

// maxNameLen is the longest policy name.
const maxNameLen = 64

// knownResource reports whether r is one of Resources. It does not read the
// exported slice, which a caller could modify.
func knownResource(r string) bool {
	switch r {
	case ResourceKV, ResourceService, ResourceNode, ResourceJob, ResourceACL, ResourceOperator:
		return true
	}
	return false
}

// unnamedResource reports whether r has the single name "", so that a
// rule on it must have an empty prefix.
func unnamedResource(r string) bool {
	return r == ResourceACL || r == ResourceOperator
}

// validAccess reports whether a is one of Deny, Read and Write.
func validAccess(a Access) bool {
	return a == Deny || a == Read || a == Write
}

// Rule grants Access on every name of Resource that starts with Prefix; an
// empty Prefix covers all names.
type Rule struct {
	// Resource is one of Resources.
	Resource string `json:"resource" yaml:"resource"`
	// Prefix is the start of the names the rule covers, compared byte by
	// byte; "" covers all names. It must be "" for the acl and operator
	// resources, whose only name is "".
	Prefix string `json:"prefix,omitempty" yaml:"prefix"`
	// Access is what the rule grants.
	Access Access `json:"access" yaml:"access"`
}

// Policy is a named set of rules.
type Policy struct {
	// Name identifies the policy: 1 to 64 of a-z, 0-9, '_' and '-',
	// starting with a letter or digit. "management" is reserved.
	Name string `json:"name" yaml:"name"`
	// Description is free text for people.
	Description string `json:"description,omitempty" yaml:"description"`
	// Rules are the grants of the policy, at least one.
	Rules []Rule `json:"rules" yaml:"rules"`
}

// Validate checks the policy and returns every problem it finds, each
// naming its field as in `rules[1].resource: "kvv" is not one of kv,
// service, node, job, acl, operator`, joined by errors.Join in field order;
// nil when p is valid.
//
// It checks the name (see Policy.Name, and "management" is reserved), that
// there is at least one rule, and for each rule that its resource is known,
// its access is read, write or deny, its prefix is valid UTF-8 of at most
// 1024 bytes (and empty for acl and operator), and that no earlier
// rule has the same resource and prefix.
func (p Policy) Validate() error {
	var v validator
	if msg := policyNameProblem(p.Name); msg != "" {
		v.add("name", "%s", msg)
	}
	if len(p.Rules) == 0 {
		v.add("rules", "at least one rule is required")
	}
	type key struct{ resource, prefix string }
	seen := make(map[key]int, len(p.Rules))
	for i, r := range p.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		resourceOK := knownResource(r.Resource)
		if !resourceOK {
			v.add(field+".resource", "%q is not one of %s", r.Resource, strings.Join(Resources, ", "))
		}
		prefixOK := true
		switch {
		case len(r.Prefix) > maxPrefixLen:
			v.add(field+".prefix", "is %d bytes long, more than %d", len(r.Prefix), maxPrefixLen)
			prefixOK = false
		case !utf8.ValidString(r.Prefix):
			v.add(field+".prefix", "%q is not valid UTF-8", r.Prefix)
			prefixOK = false
		case r.Prefix != "" && unnamedResource(r.Resource):
			v.add(field+".prefix", "must be empty for resource %s, whose only name is \"\"", r.Resource)
			prefixOK = false
		}
		if !validAccess(r.Access) {
			v.add(field+".access", "%q is not one of read, write, deny", r.Access)
		}
		if resourceOK && prefixOK {
			k := key{r.Resource, r.Prefix}
			if j, dup := seen[k]; dup {
				v.add(field, "resource %s prefix %q is already given by rules[%d]", r.Resource, r.Prefix, j)
			} else {
				seen[k] = i
			}
		}
	}
	return v.err()
}

// policyNameProblem describes what is wrong with a policy name, or returns
// "" if it is valid.
func policyNameProblem(name string) string {
	if name == "" {
		return "required"
	}
	if name == managementName {
		return fmt.Sprintf("%q is reserved", name)
	}
	if len(name) > maxNameLen {
		return fmt.Sprintf("%q is %d characters long, more than %d", name, len(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		lowerOrDigit := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !lowerOrDigit && (i == 0 || c != '_' && c != '-') {
			return fmt.Sprintf("%q is not a valid policy name: 1 to %d of a-z, 0-9, '_' and '-', starting with a letter or digit", name, maxNameLen)
		}
	}
	return ""
}

// validator collects the problems of one object in field order.
type validator struct {
	errs []error
}

// add records a problem with field, as "field: msg".
func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, errors.New(field+": "+fmt.Sprintf(format, args...)))
}

// err returns the problems joined, or nil if there are none.
func (v *validator) err() error { return errors.Join(v.errs...) }
