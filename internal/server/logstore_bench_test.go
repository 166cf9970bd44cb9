package server_test

// BenchmarkLogStore compares the two Raft log stores herd could use, with
// the write pattern Raft gives them: StoreLogs with a batch of consecutive
// entries (1 when writes trickle in, up to 64 when many clients write at
// once and BatchApplyCh groups them), 256-byte payloads, and fsync on (the
// default of both stores). One benchmark body serves both stores through
// raft.LogStore.
//
//	go test -run '^$' -bench BenchmarkLogStore -benchtime 2000x ./internal/server
//
// ns/op is the latency of one StoreLogs call (one batch, made durable);
// ns/entry divides it by the batch size; p50-us / p99-us / max-us are
// percentiles of the individual StoreLogs calls. See docs/benchmarks.md.

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

const logStoreBenchDataSize = 256

// logStoreOpener opens a fresh, empty store in dir and returns it with its
// close function.
type logStoreOpener func(b *testing.B, dir string) (raft.LogStore, func() error)

func BenchmarkLogStore(b *testing.B) {
	stores := []struct {
		name string
		open logStoreOpener
	}{
		{"raft-wal", func(b *testing.B, dir string) (raft.LogStore, func() error) {
			w, err := wal.Open(dir) // fsync on every StoreLogs: the default
			if err != nil {
				b.Fatalf("wal.Open: %v", err)
			}
			return w, w.Close
		}},
		{"raft-boltdb-v2", func(b *testing.B, dir string) (raft.LogStore, func() error) {
			bs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}) // NoSync false: fsync on commit
			if err != nil {
				b.Fatalf("raftboltdb.New: %v", err)
			}
			return bs, bs.Close
		}},
	}
	for _, st := range stores {
		for _, batch := range []int{1, 64} {
			b.Run("store="+st.name+"/batch="+strconv.Itoa(batch), func(b *testing.B) {
				benchStoreLogs(b, st.open, batch)
			})
		}
	}
}

// benchStoreLogs appends b.N batches of batch entries to a fresh store.
func benchStoreLogs(b *testing.B, open logStoreOpener, batch int) {
	store, closeStore := open(b, b.TempDir())
	defer func() {
		if err := closeStore(); err != nil {
			b.Errorf("close: %v", err)
		}
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	logs := make([]*raft.Log, batch)
	for i := range logs {
		data := make([]byte, logStoreBenchDataSize)
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data}
	}
	lat := make([]time.Duration, b.N)
	next := uint64(1)

	b.ReportAllocs()
	b.SetBytes(int64(batch * logStoreBenchDataSize))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := time.Now()
		for _, l := range logs {
			l.Index = next
			l.AppendedAt = now
			next++
		}
		if err := store.StoreLogs(logs); err != nil {
			b.Fatalf("StoreLogs at index %d: %v", logs[0].Index, err)
		}
		lat[i] = time.Since(now)
	}
	b.StopTimer()

	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/entry")
	slices.Sort(lat)
	pct := func(p float64) float64 {
		// nearest rank
		k := int(p*float64(len(lat))+0.999999) - 1
		k = max(0, min(k, len(lat)-1))
		return float64(lat[k].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-us")

	// Sanity: everything written is there.
	if last, err := store.LastIndex(); err != nil || last != next-1 {
		b.Fatalf("LastIndex = %d, %v; want %d", last, err, next-1)
	}
}
