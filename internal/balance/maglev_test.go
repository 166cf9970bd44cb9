package balance

import (
	"fmt"
	"slices"
	"testing"
)

// mapping returns the endpoint address each of n keys picks.
func mapping(t *testing.T, eps []*Endpoint, n int) []string {
	t.Helper()
	b := mustNew(t, ConsistentHash, eps, Options{})
	addrs := make([]string, n)
	for k := range n {
		addrs[k] = b.Pick(uint64(k), nil).Addr
	}
	return addrs
}

func TestMaglevSameKeySameEndpoint(t *testing.T) {
	eps := endpoints(1, 2, 3, 4, 5)
	want := mapping(t, eps, 1000)
	if got := mapping(t, eps, 1000); !slices.Equal(got, want) {
		t.Error("two balancers over the same endpoints map keys differently")
	}
	slices.Reverse(eps)
	if got := mapping(t, eps, 1000); !slices.Equal(got, want) {
		t.Error("the mapping depends on the order of the endpoints")
	}
	b := mustNew(t, ConsistentHash, eps, Options{})
	for k := range uint64(1000) {
		if b.Pick(k, nil) != b.Pick(k, nil) {
			t.Fatalf("key %d picked two endpoints", k)
		}
	}
}

func TestMaglevDisruption(t *testing.T) {
	const keys = 100_000
	for _, n := range []int{5, 10} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			weights := make([]int, n)
			for i := range weights {
				weights[i] = 1
			}
			eps := endpoints(weights...)
			before := mapping(t, eps, keys)
			gone := eps[n/2]
			rest := slices.Delete(slices.Clone(eps), n/2, n/2+1)
			after := mapping(t, rest, keys)

			moved, movedOther := 0, 0
			for k := range keys {
				if before[k] != after[k] {
					moved++
					if before[k] != gone.Addr {
						movedOther++
					}
				}
			}
			frac := float64(moved) / keys
			t.Logf("removing 1 of %d moved %.4f of the keys (%d not from the removed endpoint)", n, frac, movedOther)
			if bound := 1/float64(n) + 0.02; frac > bound {
				t.Errorf("moved %.4f of the keys, want <= %.4f", frac, bound)
			}

			if restored := mapping(t, eps, keys); !slices.Equal(restored, before) {
				t.Error("adding the endpoint back does not restore the mapping")
			}
		})
	}
}

func TestMaglevSkipIsDeterministic(t *testing.T) {
	eps := endpoints(1, 1, 1, 1, 1)
	b := mustNew(t, ConsistentHash, eps, Options{})
	for k := range uint64(1000) {
		first := b.Pick(k, nil)
		notFirst := func(e *Endpoint) bool { return e == first }
		second := b.Pick(k, notFirst)
		if second == nil || second == first {
			t.Fatalf("key %d: fallback %v, want another endpoint than %s", k, second, first.Addr)
		}
		for range 3 {
			if again := b.Pick(k, notFirst); again != second {
				t.Fatalf("key %d: fallback %s then %s", k, second.Addr, again.Addr)
			}
		}
		third := b.Pick(k, func(e *Endpoint) bool { return e == first || e == second })
		if third == nil || third == first || third == second {
			t.Fatalf("key %d: second fallback %v", k, third)
		}
	}
}

func TestMaglevTableSize(t *testing.T) {
	b := mustNew(t, ConsistentHash, endpoints(1, 2, 3), Options{MaglevTableSize: 101})
	if n := len(b.(*maglev).table); n != 101 {
		t.Errorf("table size %d, want 101", n)
	}
	b = mustNew(t, ConsistentHash, endpoints(1, 2, 3), Options{})
	if n := len(b.(*maglev).table); n != DefaultMaglevTableSize {
		t.Errorf("default table size %d, want %d", n, DefaultMaglevTableSize)
	}
	weights := make([]int, 1000)
	for i := range weights {
		weights[i] = 1
	}
	b = mustNew(t, ConsistentHash, endpoints(weights...), Options{})
	if n := len(b.(*maglev).table); n < 100_000 || !isPrime(n) {
		t.Errorf("table size %d for 1000 endpoints, want a prime >= 100000", n)
	}
}
