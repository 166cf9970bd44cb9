package routing

import (
	"fmt"
	"strings"
)

// Entry is one route of one service.
type Entry[T any] struct {
	// Host is an exact host name, a wildcard "*.example.com" (one or more
	// labels before ".example.com"), or empty for any host. It compares
	// case-insensitively; a trailing dot and brackets around an IPv6
	// literal are dropped. It must not carry a port.
	Host string
	// PathPrefix starts with '/' and matches on a segment boundary; empty
	// means "/".
	PathPrefix string
	// Port, when not zero, makes the entry a TCP route for this listener
	// port (1-65535); Host and PathPrefix must then be empty.
	Port int
	// Value is what a match returns: the gateway's per-service state.
	Value T
}

// Table is an immutable routing table. Build a new one on every change and
// swap it in atomically. Lookups are safe for concurrent use and do not
// allocate. A nil *Table is an empty table.
type Table[T any] struct {
	// exact is keyed by canonical host name, wild by the suffix after
	// "*.", for example "example.com".
	exact map[string]*prefixes
	wild  map[string]*prefixes
	// maxWild is the length of the longest key of wild.
	maxWild int
	// anyHost holds the routes without a host; nil if there are none.
	anyHost *prefixes
	// ports maps a TCP listener port to an index in values.
	ports map[int]int
	// values holds every entry's Value, at the entry's index.
	values []T
}

// prefixes are the path prefixes of one host.
type prefixes struct {
	// index maps a prefix to an index in Table.values.
	index map[string]int
	// maxLen is the length of the longest prefix; longer candidates are
	// not looked up.
	maxLen int
}

// ConflictError is returned by Build when two entries claim the same
// traffic: the same host (compared case-insensitively) and path prefix, or
// the same port.
type ConflictError struct {
	// First and Second are the entries' indexes in Build's argument;
	// First < Second.
	First, Second int
	// FirstRoute and SecondRoute describe the entries as written, e.g.
	// `host "example.com" path "/api"` or `port 5432`.
	FirstRoute, SecondRoute string
}

// Error names both entries.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("entry %d (%s) conflicts with entry %d (%s)",
		e.Second, e.SecondRoute, e.First, e.FirstRoute)
}

// Build makes a table of entries. An invalid entry, or two entries that
// claim the same traffic (a *ConflictError), is an error. Build keeps the
// values, not the slice.
func Build[T any](entries []Entry[T]) (*Table[T], error) {
	t := &Table[T]{
		exact:  make(map[string]*prefixes),
		wild:   make(map[string]*prefixes),
		ports:  make(map[int]int),
		values: make([]T, len(entries)),
	}
	for i, e := range entries {
		t.values[i] = e.Value
		if e.Port != 0 {
			if e.Port < 0 || e.Port > 65535 {
				return nil, fmt.Errorf("entry %d: port %d is not in 1-65535", i, e.Port)
			}
			if e.Host != "" || e.PathPrefix != "" {
				return nil, fmt.Errorf("entry %d: a TCP route (port %d) has no host or path prefix", i, e.Port)
			}
			if j, dup := t.ports[e.Port]; dup {
				return nil, conflict(entries, j, i)
			}
			t.ports[e.Port] = i
			continue
		}
		host, wildcard, err := canonicalHost(e.Host)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		prefix, err := canonicalPrefix(e.PathPrefix)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		var p *prefixes
		switch {
		case wildcard:
			p = t.wild[host]
			if p == nil {
				p = newPrefixes()
				t.wild[host] = p
				t.maxWild = max(t.maxWild, len(host))
			}
		case host != "":
			p = t.exact[host]
			if p == nil {
				p = newPrefixes()
				t.exact[host] = p
			}
		default:
			if t.anyHost == nil {
				t.anyHost = newPrefixes()
			}
			p = t.anyHost
		}
		if j, dup := p.index[prefix]; dup {
			return nil, conflict(entries, j, i)
		}
		p.index[prefix] = i
		p.maxLen = max(p.maxLen, len(prefix))
	}
	return t, nil
}

func newPrefixes() *prefixes { return &prefixes{index: make(map[string]int, 1)} }

func conflict[T any](entries []Entry[T], first, second int) *ConflictError {
	return &ConflictError{
		First:       first,
		Second:      second,
		FirstRoute:  describe(entries[first]),
		SecondRoute: describe(entries[second]),
	}
}

// describe writes an entry's route as its author wrote it.
func describe[T any](e Entry[T]) string {
	if e.Port != 0 {
		return fmt.Sprintf("port %d", e.Port)
	}
	return fmt.Sprintf("host %q path %q", e.Host, e.PathPrefix)
}

// canonicalPrefix returns the prefix as matched: "/" for "".
func canonicalPrefix(p string) (string, error) {
	switch {
	case p == "":
		return "/", nil
	case p[0] != '/':
		return "", fmt.Errorf("path prefix %q does not start with '/'", p)
	case strings.ContainsAny(p, "?#"):
		return "", fmt.Errorf("path prefix %q contains a query or fragment, which paths are matched without", p)
	}
	return p, nil
}

// Len returns the number of entries, HTTP and TCP.
func (t *Table[T]) Len() int {
	if t == nil {
		return 0
	}
	return len(t.values)
}

// Match returns the value of the route for an HTTP request, or false if no
// route matches; see the package documentation for the precedence. host is
// as in the Host header: it may carry a port, also after a bracketed IPv6
// literal ("[::1]:8080"), and compares case-insensitively, ignoring a
// trailing dot. path is the request path; anything from a '?' on is
// ignored, and an empty path is "/". Match does not allocate unless host
// is longer than 255 bytes and has upper-case letters.
func (t *Table[T]) Match(host, path string) (T, bool) {
	var zero T
	if t == nil {
		return zero, false
	}
	p := t.host(host)
	if p == nil {
		return zero, false
	}
	i, ok := p.match(path)
	if !ok {
		return zero, false
	}
	return t.values[i], true
}

// MatchPort returns the value of the TCP route for a listener port, or
// false if there is none.
func (t *Table[T]) MatchPort(port int) (T, bool) {
	if t != nil {
		if i, ok := t.ports[port]; ok {
			return t.values[i], true
		}
	}
	var zero T
	return zero, false
}

// match returns the index of the longest prefix that matches path on a
// segment boundary. The candidates are the path itself and, at each '/',
// the path up to and including it and the path before it; walking them
// from the end costs one map lookup per candidate however many prefixes
// the host has.
func (p *prefixes) match(path string) (int, bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		path = "/"
	}
	if len(path) <= p.maxLen {
		if i, ok := p.index[path]; ok {
			return i, true
		}
	}
	end := len(path)
	for {
		slash := strings.LastIndexByte(path[:end], '/')
		if slash < 0 {
			return 0, false
		}
		// path[:slash+1] ends in '/'; it is path itself when path ends
		// with '/', already looked up.
		if n := slash + 1; n < len(path) && n <= p.maxLen {
			if i, ok := p.index[path[:n]]; ok {
				return i, true
			}
		}
		if slash > 0 && slash <= p.maxLen {
			if i, ok := p.index[path[:slash]]; ok {
				return i, true
			}
		}
		end = slash
	}
}
