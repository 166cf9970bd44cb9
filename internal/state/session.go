package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// SessionCreate stores a new session at idx.
func (s *Store) SessionCreate(idx uint64, se *api.SessionEntry) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableSessions, "id", se.ID)
	if err != nil {
		return fmt.Errorf("session create: %w", err)
	}
	if raw != nil {
		return fmt.Errorf("session create: id %q already exists", se.ID)
	}
	n := *se
	n.CreateIndex, n.ModifyIndex = idx, idx
	if n.Behavior == "" {
		n.Behavior = api.SessionBehaviorRelease
	}
	if err := txn.Insert(tableSessions, &n); err != nil {
		return fmt.Errorf("session create: %w", err)
	}
	if err := setIndex(txn, tableSessions, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// SessionDestroy invalidates the session at idx: its locks are released,
// or its locked keys deleted when its behaviour is "delete". Destroying a
// missing session succeeds.
func (s *Store) SessionDestroy(idx uint64, id string) error {
	return s.SessionDestroyAt(idx, id, time.Now())
}

// SessionDestroyAt is SessionDestroy for an invalidation that happened at
// the given time (the leader's append time of the log entry), so that
// replaying an old entry after a restart does not re-arm a lock delay
// that has long run out.
func (s *Store) SessionDestroyAt(idx uint64, id string, at time.Time) error {
	txn := s.writeTxn()
	defer txn.Abort()
	keys, delay, err := sessionDestroyTxn(txn, idx, id)
	if err != nil {
		return err
	}
	txn.Commit()
	s.setLockDelay(keys, at.Add(delay))
	return nil
}

func sessionDestroyTxn(txn *memdb.Txn, idx uint64, id string) ([]string, time.Duration, error) {
	raw, err := txn.First(tableSessions, "id", id)
	if err != nil {
		return nil, 0, fmt.Errorf("session destroy: %w", err)
	}
	if raw == nil {
		return nil, 0, nil
	}
	se := raw.(*api.SessionEntry)
	it, err := txn.Get(tableKV, "session", id)
	if err != nil {
		return nil, 0, fmt.Errorf("session destroy: %w", err)
	}
	var held []*api.KVPair
	for r := it.Next(); r != nil; r = it.Next() {
		held = append(held, r.(*api.KVPair))
	}
	keys := make([]string, 0, len(held))
	for _, e := range held {
		keys = append(keys, e.Key)
		if se.Behavior == api.SessionBehaviorDelete {
			if _, err := kvDeleteTxn(txn, idx, e.Key); err != nil {
				return nil, 0, err
			}
			continue
		}
		n := *e
		n.Session = ""
		if err := kvSetTxn(txn, idx, &n, true); err != nil {
			return nil, 0, err
		}
	}
	if len(held) > 0 {
		if err := setIndex(txn, tableKV, idx); err != nil {
			return nil, 0, err
		}
	}
	if err := txn.Delete(tableSessions, se); err != nil {
		return nil, 0, fmt.Errorf("session destroy: %w", err)
	}
	if err := setIndex(txn, tableSessions, idx); err != nil {
		return nil, 0, err
	}
	return keys, se.LockDelay, nil
}

// SessionGet returns one session (nil if absent) and the index to block on.
func (s *Store) SessionGet(ws memdb.WatchSet, id string) (uint64, *api.SessionEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, nil, tableSessions)
	if err != nil {
		return 0, nil, err
	}
	ch, raw, err := txn.FirstWatch(tableSessions, "id", id)
	if err != nil {
		return 0, nil, fmt.Errorf("session get: %w", err)
	}
	ws.Add(ch)
	if raw == nil {
		return max(idx, 1), nil, nil
	}
	return max(idx, 1), raw.(*api.SessionEntry), nil
}

// SessionList returns all sessions, or those of one node when node is set.
func (s *Store) SessionList(ws memdb.WatchSet, node string) (uint64, []*api.SessionEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableSessions)
	if err != nil {
		return 0, nil, err
	}
	var it memdb.ResultIterator
	if node == "" {
		it, err = txn.Get(tableSessions, "id")
	} else {
		it, err = txn.Get(tableSessions, "node", node)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("session list: %w", err)
	}
	out := []*api.SessionEntry{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*api.SessionEntry))
	}
	return max(idx, 1), out, nil
}
