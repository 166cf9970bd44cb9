package balance

import (
	"fmt"
	"testing"
)

// benchEndpoints returns n endpoints of weights 1, 2, 3, 4, 1, 2, ...
func benchEndpoints(n int) []*Endpoint {
	weights := make([]int, n)
	for i := range weights {
		weights[i] = i%4 + 1
	}
	return endpoints(weights...)
}

// BenchmarkPick measures one pick per algorithm over 3 and 100 endpoints,
// from one goroutine and from GOMAXPROCS goroutines at once.
func BenchmarkPick(b *testing.B) {
	for _, alg := range Algorithms() {
		for _, n := range []int{3, 100} {
			bal := mustNew(b, alg, benchEndpoints(n), Options{})
			b.Run(fmt.Sprintf("%s/n=%d", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				var key uint64
				for b.Loop() {
					key++
					bal.Pick(key, nil)
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/parallel", alg, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					var key uint64
					for pb.Next() {
						key++
						bal.Pick(key, nil)
					}
				})
			})
		}
	}
}

// BenchmarkNew measures building a balancer over 100 endpoints, which the
// gateway does on every health or configuration change.
func BenchmarkNew(b *testing.B) {
	eps := benchEndpoints(100)
	for _, alg := range Algorithms() {
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustNew(b, alg, eps, Options{})
			}
		})
	}
}
