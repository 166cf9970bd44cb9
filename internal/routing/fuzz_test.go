package routing

import (
	"strings"
	"testing"
)

// FuzzMatch builds a table from fuzzed routes, one "host prefix" per line,
// and checks Match against refMatch, a linear scan, for a fuzzed request.
func FuzzMatch(f *testing.F) {
	const routes = "example.com /\nexample.com /api\nexample.com /api/\n*.example.com /img\n" +
		"*.eu.example.com /\n::1 /\n /\n /healthz"
	for _, req := range [][2]string{
		{"example.com", "/api/x"},
		{"EXAMPLE.com.:80", "/api?x=/y"},
		{"a.b.eu.example.com", "/img/1"},
		{"x.example.com", "/imgx"},
		{"[::1]:8080", ""},
		{"other", "/healthz/"},
	} {
		f.Add(routes, req[0], req[1])
	}
	f.Add("*.a /b/\n*.b.a /b\nA /", "x.b.a", "/b/")
	f.Fuzz(func(t *testing.T, routes, host, path string) {
		var entries []Entry[int]
		for i, line := range strings.Split(routes, "\n") {
			if i == 64 {
				break
			}
			h, p, _ := strings.Cut(line, " ")
			entries = append(entries, Entry[int]{Host: h, PathPrefix: p, Value: i})
		}
		table, err := Build(entries)
		if err != nil {
			return
		}
		ref := newRefTable(t, entries)
		got, ok := table.Match(host, path)
		want, wantOK := ref.match(host, path)
		if ok != wantOK || got != want {
			t.Fatalf("Match(%q, %q) = %d, %v; the reference finds %d, %v", host, path, got, ok, want, wantOK)
		}
	})
}

// refRoute is an entry in the form refMatch compares.
type refRoute struct {
	host     string // lower-case; for a wildcard the part after "*."
	wildcard bool
	prefix   string
	value    int
}

type refTable []refRoute

// newRefTable canonicalises entries that Build accepted and fails the test
// if two of them claim the same host and prefix, which Build should have
// refused.
func newRefTable(t *testing.T, entries []Entry[int]) refTable {
	var ref refTable
	seen := make(map[refRoute]bool)
	for _, e := range entries {
		h := e.Host
		if strings.HasPrefix(h, "[") {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
		r := refRoute{host: refLower(strings.TrimSuffix(h, ".")), prefix: e.PathPrefix, value: e.Value}
		if r.prefix == "" {
			r.prefix = "/"
		}
		r.host, r.wildcard = strings.CutPrefix(r.host, "*.")
		key := r
		key.value = 0
		if seen[key] {
			t.Fatalf("Build accepted two entries for host %q (wildcard %v) prefix %q", r.host, r.wildcard, r.prefix)
		}
		seen[key] = true
		ref = append(ref, r)
	}
	return ref
}

// match is the obviously correct, slow Match: rank every route's host
// against the request's, keep the best-ranked host, and take its longest
// prefix that matches the path.
func (ref refTable) match(host, path string) (int, bool) {
	if strings.HasPrefix(host, "[") {
		if h, _, ok := strings.Cut(host[1:], "]"); ok {
			host = h
		}
	} else if strings.Count(host, ":") == 1 {
		host, _, _ = strings.Cut(host, ":")
	}
	host = refLower(strings.TrimSuffix(host, "."))
	path, _, _ = strings.Cut(path, "?")
	if path == "" {
		path = "/"
	}

	// rank is 0 for no match, 1 for any host, 2+len(suffix) for a
	// wildcard, and above every wildcard for the exact host.
	rank := func(r refRoute) int {
		switch {
		case r.host == "":
			return 1
		case r.wildcard:
			if strings.HasSuffix(host, "."+r.host) && len(host) > len(r.host)+1 {
				return 2 + len(r.host)
			}
		case r.host == host:
			return 1 << 30
		}
		return 0
	}
	best := 0
	for _, r := range ref {
		best = max(best, rank(r))
	}
	value, longest := 0, -1
	for _, r := range ref {
		if best == 0 || rank(r) != best || len(r.prefix) <= longest {
			continue
		}
		if strings.HasPrefix(path, r.prefix) &&
			(len(path) == len(r.prefix) || strings.HasSuffix(r.prefix, "/") || path[len(r.prefix)] == '/') {
			value, longest = r.value, len(r.prefix)
		}
	}
	return value, longest >= 0
}

func refLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
