// Package routing is the gateway's routing table: it maps an HTTP request's
// host and path, or a TCP listener port, to the service that takes the
// traffic.
//
// A Table is immutable. The gateway builds a new one with Build whenever
// services change and swaps it in atomically (an atomic.Pointer); lookups
// are safe for concurrent use and do not allocate.
//
// # HTTP matching
//
// A route's host is an exact name ("example.com"), a wildcard
// ("*.example.com") or empty (any host). A wildcard stands for one or more
// labels, as in Envoy and nginx: "*.example.com" matches "a.example.com"
// and "a.b.example.com" but not "example.com". Host names compare
// case-insensitively (ASCII only; international names arrive as punycode)
// and one trailing dot is ignored.
//
// Matching picks a host first and then a path, like Envoy's virtual hosts:
//
//  1. The most specific host that has any routes is chosen: the exact host
//     if some route names it, else the longest matching wildcard suffix
//     ("*.a.example.com" beats "*.example.com"), else the any-host routes.
//  2. Within that host the longest path prefix that matches wins.
//  3. If none of the chosen host's prefixes match, the request is not
//     found: there is no fall-back to a less specific host. Give a host a
//     "/" route to catch the rest of its paths.
//
// A path prefix matches on a segment boundary: "/api" matches "/api",
// "/api/" and "/api/x" but not "/apix"; "/api/" matches "/api/" and
// "/api/x" but not "/api". An empty prefix is "/", which matches every
// path. Paths compare case-sensitively and are not cleaned.
//
// # TCP matching
//
// A route with a Port is a TCP route; MatchPort finds it by the listener
// port the connection arrived on.
package routing
