package gateway

import (
	"context"
	"fmt"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// BenchmarkApply10kRoutes measures applying a change (one backend of one
// service) to a gateway running 1,000 services with 10 routes each: the
// routing table of 10,000 routes is rebuilt and swapped in.
func BenchmarkApply10kRoutes(b *testing.B) {
	g, err := New(Config{Source: newMemSource()})
	if err != nil {
		b.Fatal(err)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	defer g.Stop(context.Background())
	list := make([]*api.ServiceEntry, 1000)
	for i := range list {
		s := api.Service{Name: fmt.Sprintf("svc-%d", i), Backends: []api.Backend{{Address: fmt.Sprintf("10.0.%d.%d:80", i/250, i%250)}}}
		for j := range 10 {
			s.Routes = append(s.Routes, api.Route{Host: fmt.Sprintf("h%d.example.com", i), PathPrefix: fmt.Sprintf("/p%d", j)})
		}
		list[i] = &api.ServiceEntry{Service: s, ModifyIndex: 1}
	}
	g.apply(list, 1)
	if n := g.table.Load().http.Len(); n != 10000 {
		b.Fatalf("table has %d routes", n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e := *list[7]
		e.Backends = []api.Backend{{Address: fmt.Sprintf("10.9.9.%d:80", i%250+1)}}
		e.ModifyIndex = uint64(i + 2)
		list[7] = &e
		g.apply(list, uint64(i+2))
	}
	b.StopTimer()
	if g.table.Load().http.Len() != 10000 {
		b.Fatal("routes lost")
	}
}
