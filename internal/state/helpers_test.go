package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// Timeouts for watch-set assertions: a watch that must fire gets a generous
// deadline; one that must stay quiet gets a short one.
const (
	fireTimeout  = 2 * time.Second
	quietTimeout = 50 * time.Millisecond
)

// assertFires fails unless ws fires within fireTimeout.
func assertFires(t *testing.T, ws memdb.WatchSet, what string) {
	t.Helper()
	if timedOut := ws.Watch(time.After(fireTimeout)); timedOut {
		t.Fatalf("%s: watch set did not fire within %v", what, fireTimeout)
	}
}

// assertQuiet fails if ws fires within quietTimeout.
func assertQuiet(t *testing.T, ws memdb.WatchSet, what string) {
	t.Helper()
	if timedOut := ws.Watch(time.After(quietTimeout)); !timedOut {
		t.Fatalf("%s: watch set fired but nothing it watches changed", what)
	}
}

func mustKVSet(t testing.TB, s *Store, idx uint64, key, value string) {
	t.Helper()
	if err := s.KVSet(idx, &api.KVPair{Key: key, Value: []byte(value)}); err != nil {
		t.Fatalf("KVSet(%d, %q): %v", idx, key, err)
	}
}

func mustKVDelete(t testing.TB, s *Store, idx uint64, key string) {
	t.Helper()
	if err := s.KVDelete(idx, key); err != nil {
		t.Fatalf("KVDelete(%d, %q): %v", idx, key, err)
	}
}

func mustSession(t testing.TB, s *Store, idx uint64, se *api.SessionEntry) {
	t.Helper()
	if err := s.SessionCreate(idx, se); err != nil {
		t.Fatalf("SessionCreate(%d, %q): %v", idx, se.ID, err)
	}
}

func mustLock(t testing.TB, s *Store, idx uint64, key, value, session string) {
	t.Helper()
	ok, err := s.KVLock(idx, &api.KVPair{Key: key, Value: []byte(value)}, session)
	if err != nil || !ok {
		t.Fatalf("KVLock(%d, %q, %q) = %v, %v; want true, nil", idx, key, session, ok, err)
	}
}

// mustGet returns key's entry, failing if the read errors.
func mustGet(t testing.TB, s *Store, key string) (uint64, *api.KVPair) {
	t.Helper()
	idx, e, err := s.KVGet(nil, key)
	if err != nil {
		t.Fatalf("KVGet(%q): %v", key, err)
	}
	return idx, e
}

func mustList(t testing.TB, s *Store, prefix string) (uint64, []*api.KVPair) {
	t.Helper()
	idx, out, err := s.KVList(nil, prefix)
	if err != nil {
		t.Fatalf("KVList(%q): %v", prefix, err)
	}
	return idx, out
}

func keysOf(entries []*api.KVPair) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Key)
	}
	return out
}

// dumpTables returns every row of every table, in id order, straight from
// memdb: the complete observable content of the store.
func dumpTables(t testing.TB, s *Store) map[string][]any {
	t.Helper()
	txn := s.readTxn()
	out := map[string][]any{}
	for _, table := range snapshotTables {
		it, err := txn.Get(table, "id")
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		rows := []any{}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			rows = append(rows, raw)
		}
		out[table] = rows
	}
	return out
}

// snapshotBytes serialises the store; equal bytes mean equal content.
func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

// tombstoneIndexes maps each tombstoned key to its index.
func tombstoneIndexes(t testing.TB, s *Store) map[string]uint64 {
	t.Helper()
	it, err := s.readTxn().Get(tableTombstones, "id")
	if err != nil {
		t.Fatalf("reading tombstones: %v", err)
	}
	out := map[string]uint64{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		tb := raw.(*tombstone)
		out[tb.Key] = tb.Index
	}
	return out
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
