package state

import (
	"fmt"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// BenchmarkKVSet measures one FSM write of a 256-byte value into a store
// holding 10,000 keys, the shape of the KV benchmark's puts.
func BenchmarkKVSet(b *testing.B) {
	s := New()
	val := make([]byte, 256)
	for i := range 10000 {
		if err := s.KVSet(uint64(i+1), &api.KVPair{Key: fmt.Sprintf("kvbench/%08d", i), Value: val}); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("kvbench/%08d", (i*7919)%10000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.KVSet(uint64(20000+i), &api.KVPair{Key: keys[i%len(keys)], Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}
