package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// tombstoneRetain is how many Raft indexes a tombstone is kept for. Older
// ones are reaped on later deletes, and the highest reaped index becomes a
// floor for every listing's index, so a listing never reports an index a
// client already holds for different content.
const tombstoneRetain = 100_000

// KVGet returns the entry for key (nil if absent) and the index to block on.
func (s *Store) KVGet(ws memdb.WatchSet, key string) (uint64, *api.KVPair, error) {
	txn := s.readTxn()
	ch, raw, err := txn.FirstWatch(tableKV, "id", key)
	if err != nil {
		return 0, nil, fmt.Errorf("kv get: %w", err)
	}
	ws.Add(ch)
	if raw != nil {
		e := raw.(*api.KVPair)
		return e.ModifyIndex, e, nil
	}
	idx, err := maxIndex(txn, nil, tableKV)
	return max(idx, 1), nil, err
}

// KVList returns the entries under prefix in key order and the index to
// block on: the newest change (write or delete) under the prefix.
func (s *Store) KVList(ws memdb.WatchSet, prefix string) (uint64, []*api.KVPair, error) {
	txn := s.readTxn()
	it, err := txn.Get(tableKV, "id_prefix", prefix)
	if err != nil {
		return 0, nil, fmt.Errorf("kv list: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*api.KVPair
	var idx uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*api.KVPair)
		out = append(out, e)
		idx = max(idx, e.ModifyIndex)
	}
	tit, err := txn.Get(tableTombstones, "id_prefix", prefix)
	if err != nil {
		return 0, nil, fmt.Errorf("kv list: %w", err)
	}
	ws.Add(tit.WatchCh())
	found := idx > 0
	for raw := tit.Next(); raw != nil; raw = tit.Next() {
		idx = max(idx, raw.(*tombstone).Index)
		found = true
	}
	if !found {
		idx, err = maxIndex(txn, nil, tableKV)
		if err != nil {
			return 0, nil, err
		}
	}
	floor, err := maxIndex(txn, nil, tableReaped)
	if err != nil {
		return 0, nil, err
	}
	return max(idx, floor, 1), out, nil
}

// KVBatch applies several KV writes at one Raft index in one
// transaction: the index row and the commit (with its watch
// notifications) are paid once for all of them. The caller must not pass
// two writes of one key: every change of a key gets an index of its own.
// Each write checks its conditions before it changes anything, so a
// failed or refused write leaves the batch as it was.
type KVBatch struct {
	txn     *memdb.Txn
	idx     uint64
	changed bool
}

// KVBatch starts a batch of writes at idx. Call Commit to apply them, or
// Abort (always safe, also after Commit) to drop them.
func (s *Store) KVBatch(idx uint64) *KVBatch {
	return &KVBatch{txn: s.writeTxn(), idx: idx}
}

// Commit applies the batch's writes.
func (b *KVBatch) Commit() error {
	if b.changed {
		if err := setIndex(b.txn, tableKV, b.idx); err != nil {
			b.txn.Abort()
			return err
		}
	}
	b.txn.Commit()
	return nil
}

// Abort drops the batch's writes.
func (b *KVBatch) Abort() { b.txn.Abort() }

// one runs a single write in a batch of its own.
func (s *Store) one(idx uint64, write func(b *KVBatch) (bool, error)) (bool, error) {
	b := s.KVBatch(idx)
	defer b.Abort()
	ok, err := write(b)
	if err != nil || !ok {
		return ok, err
	}
	return true, b.Commit()
}

// KVSet writes e at idx, keeping the key's CreateIndex, LockIndex and lock
// holder if it exists.
func (s *Store) KVSet(idx uint64, e *api.KVPair) error {
	_, err := s.one(idx, func(b *KVBatch) (bool, error) { return true, b.KVSet(e) })
	return err
}

// KVSet is Store.KVSet within the batch.
func (b *KVBatch) KVSet(e *api.KVPair) error {
	if err := kvSetTxn(b.txn, b.idx, e, false); err != nil {
		return err
	}
	b.changed = true
	return nil
}

// kvSetTxn writes e at idx. The caller updates the KV table's index row.
func kvSetTxn(txn *memdb.Txn, idx uint64, e *api.KVPair, updateSession bool) error {
	raw, err := txn.First(tableKV, "id", e.Key)
	if err != nil {
		return fmt.Errorf("kv set: %w", err)
	}
	n := *e
	n.ModifyIndex = idx
	if raw != nil {
		old := raw.(*api.KVPair)
		n.CreateIndex = old.CreateIndex
		if !updateSession {
			n.Session = old.Session
			n.LockIndex = old.LockIndex
		}
	} else {
		n.CreateIndex = idx
	}
	if err := txn.Insert(tableKV, &n); err != nil {
		return fmt.Errorf("kv set: %w", err)
	}
	// Look before deleting: memdb's Delete prepares a writable index
	// (allocations) even when there is nothing to delete, the usual case.
	if t, err := txn.First(tableTombstones, "id", e.Key); err != nil {
		return fmt.Errorf("kv set: %w", err)
	} else if t != nil {
		if err := txn.Delete(tableTombstones, t); err != nil {
			return fmt.Errorf("kv set: %w", err)
		}
	}
	return nil
}

// KVCAS writes e only if the key's ModifyIndex equals cas (0: only if the
// key does not exist). It reports whether it wrote.
func (s *Store) KVCAS(idx uint64, e *api.KVPair, cas uint64) (bool, error) {
	return s.one(idx, func(b *KVBatch) (bool, error) { return b.KVCAS(e, cas) })
}

// KVCAS is Store.KVCAS within the batch.
func (b *KVBatch) KVCAS(e *api.KVPair, cas uint64) (bool, error) {
	raw, err := b.txn.First(tableKV, "id", e.Key)
	if err != nil {
		return false, fmt.Errorf("kv cas: %w", err)
	}
	if cas == 0 && raw != nil {
		return false, nil
	}
	if cas != 0 && (raw == nil || raw.(*api.KVPair).ModifyIndex != cas) {
		return false, nil
	}
	return true, b.KVSet(e)
}

// KVDelete removes key at idx. Deleting a missing key succeeds.
func (s *Store) KVDelete(idx uint64, key string) error {
	_, err := s.one(idx, func(b *KVBatch) (bool, error) { return true, b.KVDelete(key) })
	return err
}

// KVDelete is Store.KVDelete within the batch.
func (b *KVBatch) KVDelete(key string) error {
	deleted, err := kvDeleteTxn(b.txn, b.idx, key)
	b.changed = b.changed || deleted
	return err
}

// KVDeleteCAS removes key only if its ModifyIndex equals cas.
func (s *Store) KVDeleteCAS(idx uint64, key string, cas uint64) (bool, error) {
	return s.one(idx, func(b *KVBatch) (bool, error) { return b.KVDeleteCAS(key, cas) })
}

// KVDeleteCAS is Store.KVDeleteCAS within the batch.
func (b *KVBatch) KVDeleteCAS(key string, cas uint64) (bool, error) {
	raw, err := b.txn.First(tableKV, "id", key)
	if err != nil {
		return false, fmt.Errorf("kv delete-cas: %w", err)
	}
	if raw == nil {
		return true, nil // already gone: success, as in Consul
	}
	if raw.(*api.KVPair).ModifyIndex != cas {
		return false, nil
	}
	return true, b.KVDelete(key)
}

// KVDeleteTree removes every key under prefix at idx.
func (s *Store) KVDeleteTree(idx uint64, prefix string) error {
	_, err := s.one(idx, func(b *KVBatch) (bool, error) {
		it, err := b.txn.Get(tableKV, "id_prefix", prefix)
		if err != nil {
			return false, fmt.Errorf("kv delete-tree: %w", err)
		}
		var keys []string
		for raw := it.Next(); raw != nil; raw = it.Next() {
			keys = append(keys, raw.(*api.KVPair).Key)
		}
		for _, k := range keys {
			if err := b.KVDelete(k); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	return err
}

// kvDeleteTxn removes key at idx, leaving a tombstone, and reports whether
// there was a key. The caller updates the KV table's index row.
func kvDeleteTxn(txn *memdb.Txn, idx uint64, key string) (bool, error) {
	raw, err := txn.First(tableKV, "id", key)
	if err != nil {
		return false, fmt.Errorf("kv delete: %w", err)
	}
	if raw == nil {
		return false, nil
	}
	if err := txn.Delete(tableKV, raw); err != nil {
		return false, fmt.Errorf("kv delete: %w", err)
	}
	if err := txn.Insert(tableTombstones, &tombstone{Key: key, Index: idx}); err != nil {
		return false, fmt.Errorf("kv delete: %w", err)
	}
	if idx > tombstoneRetain {
		if err := reapTombstones(txn, idx-tombstoneRetain); err != nil {
			return false, err
		}
	}
	return true, nil
}

func reapTombstones(txn *memdb.Txn, before uint64) error {
	it, err := txn.LowerBound(tableTombstones, "index", uint64(0))
	if err != nil {
		return fmt.Errorf("reaping tombstones: %w", err)
	}
	var old []*tombstone
	for raw := it.Next(); raw != nil; raw = it.Next() {
		t := raw.(*tombstone)
		if t.Index >= before {
			break
		}
		old = append(old, t)
	}
	var reaped uint64
	for _, t := range old {
		if err := txn.Delete(tableTombstones, t); err != nil {
			return fmt.Errorf("reaping tombstones: %w", err)
		}
		reaped = max(reaped, t.Index)
	}
	if reaped == 0 {
		return nil
	}
	return setIndex(txn, tableReaped, reaped)
}

// KVLock acquires key's lock for session at idx, writing e's value and
// flags. It reports false when another session holds the lock. Acquiring a
// lock the session already holds updates the value and keeps LockIndex.
func (s *Store) KVLock(idx uint64, e *api.KVPair, session string) (bool, error) {
	return s.one(idx, func(b *KVBatch) (bool, error) { return b.KVLock(e, session) })
}

// KVLock is Store.KVLock within the batch.
func (b *KVBatch) KVLock(e *api.KVPair, session string) (bool, error) {
	sraw, err := b.txn.First(tableSessions, "id", session)
	if err != nil {
		return false, fmt.Errorf("kv lock: %w", err)
	}
	if sraw == nil {
		return false, fmt.Errorf("invalid session %q: %w", session, ErrNotFound)
	}
	raw, err := b.txn.First(tableKV, "id", e.Key)
	if err != nil {
		return false, fmt.Errorf("kv lock: %w", err)
	}
	n := *e
	n.Session = session
	if raw != nil {
		old := raw.(*api.KVPair)
		switch old.Session {
		case session:
			n.LockIndex = old.LockIndex
		case "":
			n.LockIndex = old.LockIndex + 1
		default:
			return false, nil
		}
	} else {
		n.LockIndex = 1
	}
	if err := kvSetTxn(b.txn, b.idx, &n, true); err != nil {
		return false, err
	}
	b.changed = true
	return true, nil
}

// KVUnlock releases key's lock if session holds it, writing e's value and
// flags. It reports false when session does not hold the lock.
func (s *Store) KVUnlock(idx uint64, e *api.KVPair, session string) (bool, error) {
	return s.one(idx, func(b *KVBatch) (bool, error) { return b.KVUnlock(e, session) })
}

// KVUnlock is Store.KVUnlock within the batch.
func (b *KVBatch) KVUnlock(e *api.KVPair, session string) (bool, error) {
	raw, err := b.txn.First(tableKV, "id", e.Key)
	if err != nil {
		return false, fmt.Errorf("kv unlock: %w", err)
	}
	if raw == nil || raw.(*api.KVPair).Session != session {
		return false, nil
	}
	n := *e
	n.Session = ""
	n.LockIndex = raw.(*api.KVPair).LockIndex
	if err := kvSetTxn(b.txn, b.idx, &n, true); err != nil {
		return false, err
	}
	b.changed = true
	return true, nil
}

// LockDelayUntil returns the time until which key may not be locked because
// a session holding it was invalidated with a lock delay (zero if none).
func (s *Store) LockDelayUntil(key string) time.Time {
	s.lockDelayMu.Lock()
	defer s.lockDelayMu.Unlock()
	t, ok := s.lockDelay[key]
	if ok && time.Now().After(t) {
		delete(s.lockDelay, key)
		return time.Time{}
	}
	return t
}

func (s *Store) setLockDelay(keys []string, until time.Time) {
	if len(keys) == 0 || !until.After(time.Now()) {
		return
	}
	s.lockDelayMu.Lock()
	defer s.lockDelayMu.Unlock()
	for _, k := range keys {
		s.lockDelay[k] = until
	}
}

// KVKeys lists the keys under prefix, folding everything after the first
// separator past the prefix into one entry ending in separator (Consul's
// ?keys&separator=).
func KVKeys(entries []*api.KVPair, prefix, sep string) []string {
	out := make([]string, 0, len(entries))
	last := ""
	for _, e := range entries {
		k := e.Key
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if k != last {
			out = append(out, k)
			last = k
		}
	}
	return out
}
