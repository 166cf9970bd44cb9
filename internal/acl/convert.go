package acl

import "github.com/herd-cluster/herd/api"

// FromAPI converts a policy from its wire shape.
func FromAPI(p api.ACLPolicy) Policy {
	out := Policy{Name: p.Name, Description: p.Description}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, Rule{Resource: r.Resource, Prefix: r.Prefix, Access: Access(r.Access)})
	}
	return out
}
