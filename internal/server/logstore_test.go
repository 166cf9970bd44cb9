package server

import (
	"testing"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// openWAL opens the log store as New does, with a metadata DB we close.
func openWAL(t *testing.T, dir string) (*wal.WAL, func()) {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w, func() {
		w.Close()
		meta.Close()
	}
}

// TestLogSurvivesSuffixTruncationAndRestart guards against raft-wal#31
// (v0.4.0): after raft clears a log suffix (a leader restarted holding an
// entry it never replicated), the next restart could not read the log, and
// the server could never start again.
func TestLogSurvivesSuffixTruncationAndRestart(t *testing.T) {
	dir := t.TempDir()
	w, closeW := openWAL(t, dir)
	for i := uint64(1); i <= 10; i++ {
		if err := w.StoreLogs([]*raft.Log{{Index: i, Term: 1, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.DeleteRange(10, 10); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs([]*raft.Log{{Index: 10, Term: 2, Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	closeW()

	for restart := 1; restart <= 2; restart++ {
		w, closeW = openWAL(t, dir)
		var l raft.Log
		if err := w.GetLog(1, &l); err != nil {
			t.Fatalf("restart %d: reading entry 1: %v", restart, err)
		}
		if err := w.GetLog(10, &l); err != nil || l.Term != 2 {
			t.Fatalf("restart %d: entry 10 = %+v, %v; want the term-2 rewrite", restart, l, err)
		}
		closeW()
	}
}
