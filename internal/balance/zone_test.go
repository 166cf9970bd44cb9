package balance

import (
	"fmt"
	"math"
	"testing"
)

// zoned returns endpoints of weight 1 with the zones given.
func zonedEndpoints(zones ...string) []*Endpoint {
	eps := make([]*Endpoint, len(zones))
	for i, z := range zones {
		eps[i] = NewEndpoint(fmt.Sprintf("10.0.%d.1:80", i), 1, z)
	}
	return eps
}

// localShare returns the fraction of picks that went to zone.
func localShare(got map[*Endpoint]int, zone string) float64 {
	local, total := 0, 0
	for e, c := range got {
		total += c
		if e.Zone == zone {
			local += c
		}
	}
	return float64(local) / float64(total)
}

func TestZoneAware(t *testing.T) {
	tests := []struct {
		name    string
		zones   []string
		percent int     // Options.MinLocalPercent
		want    float64 // share of picks in zone a
	}{
		// Zone a holds a third of the weight over three zones: enough.
		{name: "enough local", zones: []string{"a", "a", "b", "b", "c", "c"}, want: 1},
		{name: "enough local over percent", zones: []string{"a", "a", "a", "b"}, percent: 70, want: 1},
		// A quarter of the weight where half is expected: half the picks
		// stay local, the other half spread over all, a quarter of them
		// local again.
		{name: "spill", zones: []string{"a", "b", "b", "b"}, want: 0.5 + 0.5*0.25},
		// Half the weight where 80% is wanted: 5/8 stay local.
		{name: "spill under percent", zones: []string{"a", "a", "b", "b"}, percent: 80, want: 0.625 + 0.375*0.5},
		{name: "no local endpoints", zones: []string{"b", "b", "c", "c"}, want: 0},
		{name: "all local", zones: []string{"a", "a"}, want: 1},
	}
	for _, alg := range Algorithms() {
		for _, tc := range tests {
			t.Run(string(alg)+"/"+tc.name, func(t *testing.T) {
				eps := zonedEndpoints(tc.zones...)
				b := mustNew(t, alg, eps, Options{ZoneAware: true, LocalZone: "a", MinLocalPercent: tc.percent})
				got := count(t, b, picks, nil)
				if share := localShare(got, "a"); math.Abs(share-tc.want) > 0.02 {
					t.Errorf("local share %.4f, want %.4f", share, tc.want)
				}
				if tc.want == 0 {
					// Spread like the algorithm over all endpoints.
					checkShares(t, eps, got, weightShares(1, 1, 1, 1), 0.02)
				}
			})
		}
	}
}

func TestZoneAwareFallsBackWhenLocalSkipped(t *testing.T) {
	for _, alg := range Algorithms() {
		eps := zonedEndpoints("a", "a", "a", "b")
		b := mustNew(t, alg, eps, Options{ZoneAware: true, LocalZone: "a"})
		notLocal := func(e *Endpoint) bool { return e.Zone == "a" }
		for k := range uint64(100) {
			if e := b.Pick(k, notLocal); e != eps[3] {
				t.Fatalf("%s: picked %v with every local endpoint skipped, want %s", alg, e, eps[3].Addr)
			}
		}
	}
}

func TestZoneAwareConsistentHashKeepsKeys(t *testing.T) {
	eps := zonedEndpoints("a", "b", "b", "b")
	b := mustNew(t, ConsistentHash, eps, Options{ZoneAware: true, LocalZone: "a"})
	for k := range uint64(1000) {
		first := b.Pick(k, nil)
		for range 3 {
			if e := b.Pick(k, nil); e != first {
				t.Fatalf("key %d picked %s then %s", k, first.Addr, e.Addr)
			}
		}
	}
}
