package spec

import (
	"fmt"

	"github.com/herd-cluster/herd/api"
)

// RoutesConflict reports the first route of s that a service in others
// already claims, for the server to refuse s: an http route conflicts with
// another http route of the same host (compared case-insensitively; an
// empty host, any host, is a host of its own) and the same path prefix (an
// empty one being "/"), a tcp route with another tcp route of the same port.
// A wildcard host does not conflict with the names it covers, nor an empty
// host with any named one: the gateway picks the most specific match.
//
// others must not contain s itself: a caller replacing a service leaves out
// the stored service of the same name. nil entries are skipped. The result
// describes the conflict, as in
// `route host "a.com" path_prefix "/api" is already used by service "web"`,
// or is "" when there is none.
func RoutesConflict(s *api.Service, others []*api.Service) string {
	if s == nil || len(s.Routes) == 0 {
		return ""
	}
	owner := make(map[routeKey]string)
	for _, o := range others {
		if o == nil {
			continue
		}
		tcp := o.Protocol == ProtocolTCP
		for _, r := range o.Routes {
			k := keyOf(r, tcp)
			if _, ok := owner[k]; !ok {
				owner[k] = o.Name
			}
		}
	}
	tcp := s.Protocol == ProtocolTCP
	for _, r := range s.Routes {
		name, ok := owner[keyOf(r, tcp)]
		if !ok {
			continue
		}
		if tcp {
			return fmt.Sprintf("route port %d is already used by service %q", r.Port, name)
		}
		k := keyOf(r, false)
		if r.Host == "" {
			return fmt.Sprintf("route path_prefix %q for any host is already used by service %q", k.path, name)
		}
		return fmt.Sprintf("route host %q path_prefix %q is already used by service %q", r.Host, k.path, name)
	}
	return ""
}
