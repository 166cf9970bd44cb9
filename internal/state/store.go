package state

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Store is the in-memory cluster state. Writes come only from the Raft FSM
// (one at a time, in log order); reads may run concurrently from any
// goroutine.
type Store struct {
	// mu guards db, abandonCh and restoredApplied, which Restore replaces.
	mu              sync.RWMutex
	db              *memdb.MemDB
	abandonCh       chan struct{}
	restoredApplied uint64

	// lockDelayMu guards lockDelay: key -> time until which the key may
	// not be locked, set when a session holding it is invalidated. It is
	// wall-clock state, used only by the leader before it proposes an
	// acquire, never inside the FSM, so replicas cannot diverge on it.
	lockDelayMu sync.Mutex
	lockDelay   map[string]time.Time

	// applyMu guards applyTime, the time of the log entry being applied,
	// which events carry.
	applyMu   sync.Mutex
	applyTime time.Time
}

// ErrNotFound is returned by writes that name a missing object.
var ErrNotFound = errors.New("not found")

// New returns an empty store.
func New() *Store {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("state: invalid schema: %v", err)) // a programming error
	}
	return &Store{db: db, abandonCh: make(chan struct{}), lockDelay: map[string]time.Time{}}
}

func (s *Store) current() (*memdb.MemDB, chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db, s.abandonCh
}

// AbandonCh is closed when the store's contents are replaced by a snapshot
// restore; blocking queries add it to their watch set.
func (s *Store) AbandonCh() <-chan struct{} {
	_, ch := s.current()
	return ch
}

func (s *Store) readTxn() *memdb.Txn {
	db, _ := s.current()
	return db.Txn(false)
}

func (s *Store) writeTxn() *memdb.Txn {
	db, _ := s.current()
	return db.Txn(true)
}

// LatestIndex is the Raft index of the last write applied to the store.
func (s *Store) LatestIndex() uint64 {
	txn := s.readTxn()
	idx, _ := maxIndex(txn, nil, tableKV, tableSessions, tableMembers, tableMeta, tableServices, tableNodes, tableReplicas, tablePKI, tableJoinTokens, tableACLPolicies, tableACLTokens, tableEvents, tableVIPs)
	return idx
}

// maxIndex returns the largest write index among the tables, and adds the
// index rows' watch channels to ws when ws is not nil.
func maxIndex(txn *memdb.Txn, ws memdb.WatchSet, tables ...string) (uint64, error) {
	var max uint64
	for _, t := range tables {
		ch, raw, err := txn.FirstWatch(tableIndex, "id", t)
		if err != nil {
			return 0, fmt.Errorf("reading %s index: %w", t, err)
		}
		if ws != nil {
			ws.Add(ch)
		}
		if raw != nil && raw.(*indexEntry).Index > max {
			max = raw.(*indexEntry).Index
		}
	}
	return max, nil
}

func setIndex(txn *memdb.Txn, table string, idx uint64) error {
	if err := txn.Insert(tableIndex, &indexEntry{Table: table, Index: idx}); err != nil {
		return fmt.Errorf("updating %s index: %w", table, err)
	}
	return nil
}

// ClusterID returns the cluster's ID, set once at bootstrap ("" before).
func (s *Store) ClusterID() string {
	raw, err := s.readTxn().First(tableMeta, "id", "cluster_id")
	if err != nil || raw == nil {
		return ""
	}
	return raw.(*metaEntry).Value
}

// SetClusterID records the cluster ID at idx unless one is already set.
func (s *Store) SetClusterID(idx uint64, id string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableMeta, "id", "cluster_id")
	if err != nil {
		return err
	}
	if raw != nil {
		return nil
	}
	if err := txn.Insert(tableMeta, &metaEntry{Name: "cluster_id", Value: id}); err != nil {
		return err
	}
	if err := setIndex(txn, tableMeta, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}
