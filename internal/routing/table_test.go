package routing

import (
	"errors"
	"strings"
	"testing"
)

// testEntries is a table with every kind of host; each Value names its
// route so that failures read well.
var testEntries = []Entry[string]{
	{Host: "example.com", PathPrefix: "/", Value: "example/"},
	{Host: "example.com", PathPrefix: "/api", Value: "example/api"},
	{Host: "example.com", PathPrefix: "/api/", Value: "example/api/"},
	{Host: "example.com", PathPrefix: "/api/v2", Value: "example/api/v2"},
	{Host: "static.example.com", PathPrefix: "/assets/", Value: "static/assets/"},
	{Host: "*.example.com", Value: "*.example/"},
	{Host: "*.example.com", PathPrefix: "/img", Value: "*.example/img"},
	{Host: "*.eu.example.com", PathPrefix: "/", Value: "*.eu.example/"},
	{Host: "*.only-api.org", PathPrefix: "/api", Value: "*.only-api/api"},
	{Host: "::1", PathPrefix: "/", Value: "ipv6/"},
	{Host: "127.0.0.1", PathPrefix: "/", Value: "ipv4/"},
	{Host: "", PathPrefix: "/", Value: "any/"},
	{Host: "", PathPrefix: "/healthz", Value: "any/healthz"},
	{Port: 5432, Value: "postgres"},
	{Port: 6379, Value: "redis"},
}

func TestMatch(t *testing.T) {
	table, err := Build(testEntries)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, host, path string
		want             string // "" means no match
	}{
		{name: "exact root", host: "example.com", path: "/", want: "example/"},
		{name: "exact other path falls to root", host: "example.com", path: "/about", want: "example/"},
		{name: "longest prefix", host: "example.com", path: "/api/v2/users", want: "example/api/v2"},
		{name: "prefix equals path", host: "example.com", path: "/api", want: "example/api"},
		{name: "trailing slash prefix beats shorter", host: "example.com", path: "/api/", want: "example/api/"},
		{name: "trailing slash prefix below", host: "example.com", path: "/api/v1", want: "example/api/"},
		{name: "segment boundary", host: "example.com", path: "/apix", want: "example/"},
		{name: "segment boundary deeper", host: "example.com", path: "/api/v2x", want: "example/api/"},
		{name: "query on prefix", host: "example.com", path: "/api?q=1", want: "example/api"},
		{name: "query hides slash", host: "example.com", path: "/api?q=/v2", want: "example/api"},
		{name: "empty path is root", host: "example.com", path: "", want: "example/"},
		{name: "query only", host: "example.com", path: "?x", want: "example/"},
		{name: "double slash", host: "example.com", path: "/api//x", want: "example/api/"},
		{name: "path case-sensitive", host: "example.com", path: "/API", want: "example/"},

		{name: "host with port", host: "example.com:8080", path: "/api", want: "example/api"},
		{name: "host upper case", host: "EXAMPLE.Com", path: "/api/x", want: "example/api/"},
		{name: "host trailing dot", host: "example.com.", path: "/api", want: "example/api"},
		{name: "host upper, dot and port", host: "Example.COM.:443", path: "/", want: "example/"},
		{name: "IPv6 with port", host: "[::1]:80", path: "/x", want: "ipv6/"},
		{name: "IPv6 without port", host: "[::1]", path: "/x", want: "ipv6/"},
		{name: "IPv6 bare", host: "::1", path: "/x", want: "ipv6/"},
		{name: "IPv4 with port", host: "127.0.0.1:8080", path: "/", want: "ipv4/"},

		{name: "exact beats wildcard", host: "static.example.com", path: "/assets/app.js", want: "static/assets/"},
		{name: "exact host without matching prefix does not fall back", host: "static.example.com", path: "/index.html", want: ""},
		{name: "wildcard one label", host: "www.example.com", path: "/", want: "*.example/"},
		{name: "wildcard many labels", host: "a.b.c.example.com", path: "/img/x.png", want: "*.example/img"},
		{name: "wildcard upper case", host: "WWW.Example.COM", path: "/img", want: "*.example/img"},
		{name: "longer wildcard wins", host: "shop.eu.example.com", path: "/img", want: "*.eu.example/"},
		{name: "longer wildcard, deeper", host: "a.shop.eu.example.com", path: "/", want: "*.eu.example/"},
		{name: "wildcard needs a label", host: "eu.example.com", path: "/img", want: "*.example/img"},
		{name: "wildcard does not match apex", host: "only-api.org", path: "/api", want: "any/"},
		{name: "wildcard does not match empty label", host: ".only-api.org", path: "/api", want: "any/"},
		{name: "wildcard without matching prefix does not fall back", host: "x.only-api.org", path: "/healthz", want: ""},
		{name: "wildcard with matching prefix", host: "x.only-api.org", path: "/api/v1", want: "*.only-api/api"},
		{name: "suffix not on label boundary", host: "notexample.com", path: "/", want: "any/"},

		{name: "any host", host: "other.net", path: "/", want: "any/"},
		{name: "any host longest prefix", host: "other.net", path: "/healthz", want: "any/healthz"},
		{name: "empty host", host: "", path: "/healthz/live", want: "any/healthz"},
		{name: "any host beaten by exact", host: "example.com", path: "/healthz", want: "example/"},
		{name: "path without slash", host: "other.net", path: "*", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := table.Match(tc.host, tc.path)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Match(%q, %q) = %q, %v; want %q", tc.host, tc.path, got, ok, tc.want)
			}
		})
	}
}

func TestMatchNoAnyHost(t *testing.T) {
	table, err := Build([]Entry[string]{
		{Host: "example.com", Value: "example"},
		{Host: "*.example.com", PathPrefix: "/api", Value: "wild"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, path, want string
	}{
		{name: "exact", host: "example.com", path: "/anything", want: "example"},
		{name: "wildcard", host: "a.example.com", path: "/api", want: "wild"},
		{name: "wildcard, no prefix, no fallback", host: "a.example.com", path: "/", want: ""},
		{name: "unknown host", host: "example.org", path: "/", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := table.Match(tc.host, tc.path)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Match(%q, %q) = %q, %v; want %q", tc.host, tc.path, got, ok, tc.want)
			}
		})
	}
}

func TestMatchPort(t *testing.T) {
	table, err := Build(testEntries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		port int
		want string
	}{
		{port: 5432, want: "postgres"},
		{port: 6379, want: "redis"},
		{port: 80, want: ""},
		{port: 0, want: ""},
	} {
		got, ok := table.MatchPort(tc.port)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("MatchPort(%d) = %q, %v; want %q", tc.port, got, ok, tc.want)
		}
	}
	if got := table.Len(); got != len(testEntries) {
		t.Errorf("Len() = %d, want %d", got, len(testEntries))
	}
}

func TestNilAndEmptyTable(t *testing.T) {
	var nilTable *Table[int]
	empty, err := Build[int](nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, table := range map[string]*Table[int]{"nil": nilTable, "empty": empty} {
		if _, ok := table.Match("example.com", "/"); ok {
			t.Errorf("%s: Match found a route", name)
		}
		if _, ok := table.MatchPort(80); ok {
			t.Errorf("%s: MatchPort found a route", name)
		}
		if table.Len() != 0 {
			t.Errorf("%s: Len() = %d", name, table.Len())
		}
	}
}

func TestBuildConflicts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		entries       []Entry[int]
		first, second int
		mentions      []string
	}{
		{
			name: "same host and prefix, case-insensitive",
			entries: []Entry[int]{
				{Host: "example.com", PathPrefix: "/api"},
				{Host: "example.com", PathPrefix: "/web"},
				{Host: "Example.COM.", PathPrefix: "/api"},
			},
			first: 0, second: 2,
			mentions: []string{`entry 0 (host "example.com" path "/api")`, `entry 2 (host "Example.COM." path "/api")`},
		},
		{
			name: "empty prefix is /",
			entries: []Entry[int]{
				{Host: "", PathPrefix: ""},
				{Host: "", PathPrefix: "/"},
			},
			first: 0, second: 1,
			mentions: []string{`entry 0 (host "" path "")`, `entry 1 (host "" path "/")`},
		},
		{
			name: "same wildcard",
			entries: []Entry[int]{
				{Host: "*.Example.com"},
				{Host: "*.example.com", PathPrefix: "/"},
			},
			first: 0, second: 1,
			mentions: []string{`entry 0 (host "*.Example.com" path "")`, `entry 1 (host "*.example.com" path "/")`},
		},
		{
			name: "same port",
			entries: []Entry[int]{
				{Port: 5432},
				{Port: 6379},
				{Host: "example.com"},
				{Port: 5432},
			},
			first: 0, second: 3,
			mentions: []string{"entry 0 (port 5432)", "entry 3 (port 5432)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.entries)
			var ce *ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("Build error = %v, want a *ConflictError", err)
			}
			if ce.First != tc.first || ce.Second != tc.second {
				t.Errorf("conflict between %d and %d, want %d and %d", ce.First, ce.Second, tc.first, tc.second)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestBuildNoConflict(t *testing.T) {
	// Exact, wildcard and any host with the same prefix, and prefixes
	// differing only by a trailing slash or case, are all distinct.
	_, err := Build([]Entry[int]{
		{Host: "example.com", PathPrefix: "/api"},
		{Host: "*.example.com", PathPrefix: "/api"},
		{Host: "", PathPrefix: "/api"},
		{Host: "example.com", PathPrefix: "/api/"},
		{Host: "example.com", PathPrefix: "/API"},
		{Port: 80},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBuildInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry Entry[int]
		want  string
	}{
		{name: "port range", entry: Entry[int]{Port: 70000}, want: "not in 1-65535"},
		{name: "negative port", entry: Entry[int]{Port: -1}, want: "not in 1-65535"},
		{name: "port and host", entry: Entry[int]{Port: 80, Host: "example.com"}, want: "TCP route"},
		{name: "port and path", entry: Entry[int]{Port: 80, PathPrefix: "/"}, want: "TCP route"},
		{name: "host with port", entry: Entry[int]{Host: "example.com:80"}, want: "carries a port"},
		{name: "bracketed host with port", entry: Entry[int]{Host: "[::1]:80"}, want: "bracketed"},
		{name: "bare star", entry: Entry[int]{Host: "*"}, want: "wildcard"},
		{name: "star in the middle", entry: Entry[int]{Host: "a.*.example.com"}, want: "wildcard"},
		{name: "star without dot", entry: Entry[int]{Host: "*example.com"}, want: "wildcard"},
		{name: "empty wildcard", entry: Entry[int]{Host: "*."}, want: "wildcard"},
		{name: "only a dot", entry: Entry[int]{Host: "."}, want: "names no host"},
		{name: "path in host", entry: Entry[int]{Host: "example.com/api"}, want: "not a host name"},
		{name: "space in host", entry: Entry[int]{Host: "example .com"}, want: "space"},
		{name: "relative prefix", entry: Entry[int]{PathPrefix: "api"}, want: "start with '/'"},
		{name: "query in prefix", entry: Entry[int]{PathPrefix: "/api?x"}, want: "query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build([]Entry[int]{{Host: "ok.example.com"}, tc.entry})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "entry 1: ") {
				t.Errorf("Build error = %v, want one about entry 1 containing %q", err, tc.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	table, err := Build(testEntries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path string }{
		{"example.com", "/api/v2/users/123?full=1"},
		{"Example.COM.:8443", "/api/v1"},
		{"A.B.EU.Example.com", "/img/x.png"},
		{"x.only-api.org", "/nothing/here"},
		{"[::1]:80", "/"},
		{"unknown.net", "/healthz/ready"},
		{"", ""},
	} {
		if n := testing.AllocsPerRun(100, func() { table.Match(tc.host, tc.path) }); n != 0 {
			t.Errorf("Match(%q, %q) allocates %v times", tc.host, tc.path, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { table.MatchPort(5432) }); n != 0 {
		t.Errorf("MatchPort allocates %v times", n)
	}
}
