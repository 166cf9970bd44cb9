package routing

import (
	"fmt"
	"testing"
)

// benchEntries returns n routes spread over hosts hosts, each host with
// "/" and then prefixes "/svc1/api", "/svc2/api", ...
func benchEntries(n, hosts int) []Entry[int] {
	entries := make([]Entry[int], n)
	for i := range entries {
		host, j := i%hosts, i/hosts
		prefix := "/"
		if j > 0 {
			prefix = fmt.Sprintf("/svc%d/api", j)
		}
		entries[i] = Entry[int]{Host: fmt.Sprintf("h%d.example.com", host), PathPrefix: prefix, Value: i}
	}
	return entries
}

// benchRequests returns requests that hit, at various depths, the routes
// of benchEntries(n, hosts), and some that only reach "/".
func benchRequests(n, hosts int) [][2]string {
	var reqs [][2]string
	for i := 0; i < n; i += max(1, n/64) {
		host, j := i%hosts, i/hosts
		reqs = append(reqs,
			[2]string{fmt.Sprintf("h%d.example.com", host), fmt.Sprintf("/svc%d/api/v1/users/42?x=1", j)},
			[2]string{fmt.Sprintf("H%d.Example.com:443", host), "/static/css/site.css"},
		)
	}
	return reqs
}

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct {
		name         string
		routes, host int
	}{
		{name: "routes=100", routes: 100, host: 10},
		{name: "routes=10000", routes: 10_000, host: 1_000},
		{name: "routes=10000/one-host", routes: 10_000, host: 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			table, err := Build(benchEntries(bc.routes, bc.host))
			if err != nil {
				b.Fatal(err)
			}
			reqs := benchRequests(bc.routes, bc.host)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				if _, ok := table.Match(r[0], r[1]); !ok {
					b.Fatalf("no route for %q %q", r[0], r[1])
				}
				i++
			}
		})
	}
	b.Run("wildcard", func(b *testing.B) {
		table, err := Build([]Entry[int]{
			{Host: "*.example.com"},
			{Host: "*.eu.example.com", PathPrefix: "/api"},
			{Host: "www.example.com"},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := table.Match("a.b.c.shop.example.com", "/api/v1"); !ok {
				b.Fatal("no route")
			}
		}
	})
}

// BenchmarkBuild10k builds a table of 10,000 routes over 1,000 hosts.
func BenchmarkBuild10k(b *testing.B) {
	entries := benchEntries(10_000, 1_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
}
