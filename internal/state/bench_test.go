package state

import (
	"fmt"
	"testing"

	"github.com/herd-cluster/herd/api"
)

// benchStore returns a store holding 10,000 keys of 256-byte values, the
// shape of the KV benchmark, and the keys in a scattered order.
func benchStore(b *testing.B) (*Store, []string, []byte) {
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
	return s, keys, val
}

// BenchmarkKVSet measures one FSM write of a 256-byte value into a store
// holding 10,000 keys, the shape of the KV benchmark's puts.
func BenchmarkKVSet(b *testing.B) {
	s, keys, val := benchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.KVSet(uint64(20000+i), &api.KVPair{Key: keys[i%len(keys)], Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKVBatch measures the same writes applied 32 to a transaction,
// as the FSM applies a packed log entry; ns/op is per write.
func BenchmarkKVBatch(b *testing.B) {
	s, keys, val := benchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		batch := s.KVBatch(uint64(20000 + i))
		for j := 0; j < 32 && i < b.N; j, i = j+1, i+1 {
			if err := batch.KVSet(&api.KVPair{Key: keys[i%len(keys)], Value: val}); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
