package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/state"
)

// Op names a state change carried in a Raft log entry.
type Op string

// Operations. Values are part of the log format: never renumber or rename.
const (
	OpKVSet          Op = "kv.set"
	OpKVCAS          Op = "kv.cas"
	OpKVDelete       Op = "kv.delete"
	OpKVDeleteCAS    Op = "kv.delete_cas"
	OpKVDeleteTree   Op = "kv.delete_tree"
	OpKVLock         Op = "kv.lock"
	OpKVUnlock       Op = "kv.unlock"
	OpSessionCreate  Op = "session.create"
	OpSessionDestroy Op = "session.destroy"
	OpMemberUpsert   Op = "member.upsert"
	OpMemberDelete   Op = "member.delete"
	OpClusterInit    Op = "cluster.init"

	// OpSessionRenew never enters the log: the leader resets the
	// session's TTL timer. It travels the same forwarding path.
	OpSessionRenew Op = "session.renew"
)

// Command is one state change. Only the fields its Op needs are set.
type Command struct {
	Op      Op                `json:"op"`
	KV      *api.KVPair       `json:"kv,omitempty"`
	Key     string            `json:"key,omitempty"`
	CAS     uint64            `json:"cas,omitempty"`
	Session *api.SessionEntry `json:"session,omitempty"`
	Member  *api.Member       `json:"member,omitempty"`
	ID      string            `json:"id,omitempty"`
}

// Result is what applying a Command produced.
type Result struct {
	// Index is the Raft log index the command was applied at.
	Index uint64 `json:"index"`
	// OK is false when a conditional write (CAS, lock) did not apply.
	OK bool `json:"ok"`
	// Session is set by session create and renew.
	Session *api.SessionEntry `json:"session,omitempty"`
	// Error is set when the command was invalid; Kind classifies it.
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// Error kinds carried in Result.Kind.
const (
	KindInvalid  = "invalid"
	KindNotFound = "not_found"
)

// fsm applies committed log entries to the state store.
type fsm struct {
	store   *state.Store
	metrics *metrics

	// applied is the index of the last entry applied; appliedMu/appliedCh
	// let readers wait for an index (appliedCh is closed and replaced on
	// every apply).
	applied   atomic.Uint64
	appliedMu sync.Mutex
	appliedCh chan struct{}
}

func newFSM(store *state.Store, m *metrics) *fsm {
	return &fsm{store: store, metrics: m, appliedCh: make(chan struct{})}
}

func (f *fsm) Apply(l *raft.Log) any {
	start := time.Now()
	if !l.AppendedAt.IsZero() {
		f.metrics.commitLatency.Observe(start.Sub(l.AppendedAt).Seconds())
	}
	at := l.AppendedAt
	if at.IsZero() {
		at = start
	}
	res := f.apply(l.Index, at, l.Data)
	f.metrics.fsmApply.Observe(time.Since(start).Seconds())
	f.setApplied(l.Index)
	return res
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.appliedMu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.appliedMu.Unlock()
}

// waitApplied returns a channel closed after the next apply, and whether
// idx is already applied.
func (f *fsm) waitApplied(idx uint64) (<-chan struct{}, bool) {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.appliedCh, f.applied.Load() >= idx
}

func (f *fsm) apply(idx uint64, at time.Time, data []byte) *Result {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		// A log entry we cannot read would mean a bug or a newer writer;
		// applying nothing keeps every replica identical.
		return &Result{Index: idx, Error: fmt.Sprintf("undecodable log entry: %v", err), Kind: KindInvalid}
	}
	res := &Result{Index: idx, OK: true}
	var err error
	switch c.Op {
	case OpKVSet:
		err = f.store.KVSet(idx, c.KV)
	case OpKVCAS:
		res.OK, err = f.store.KVCAS(idx, c.KV, c.CAS)
	case OpKVDelete:
		err = f.store.KVDelete(idx, c.Key)
	case OpKVDeleteCAS:
		res.OK, err = f.store.KVDeleteCAS(idx, c.Key, c.CAS)
	case OpKVDeleteTree:
		err = f.store.KVDeleteTree(idx, c.Key)
	case OpKVLock:
		res.OK, err = f.store.KVLock(idx, c.KV, c.ID)
	case OpKVUnlock:
		res.OK, err = f.store.KVUnlock(idx, c.KV, c.ID)
	case OpSessionCreate:
		err = f.store.SessionCreate(idx, c.Session)
		if err == nil {
			_, res.Session, err = f.store.SessionGet(nil, c.Session.ID)
		}
	case OpSessionDestroy:
		err = f.store.SessionDestroyAt(idx, c.ID, at)
	case OpMemberUpsert:
		err = f.store.MemberUpsert(idx, c.Member)
	case OpMemberDelete:
		err = f.store.MemberDelete(idx, c.ID)
	case OpClusterInit:
		err = f.store.SetClusterID(idx, c.ID)
	default:
		err = fmt.Errorf("unknown operation %q", c.Op)
	}
	if err != nil {
		res.OK = false
		res.Error = err.Error()
		res.Kind = KindInvalid
		if errors.Is(err, state.ErrNotFound) {
			res.Kind = KindNotFound
		}
	}
	return res
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	// raft calls Snapshot between applies on the FSM goroutine, so the
	// applied index is exactly the one the snapshot reflects.
	snap := f.store.Snapshot()
	snap.Applied = f.applied.Load()
	return &fsmSnapshot{snap: snap}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	f.setApplied(max(f.store.RestoredApplied(), f.store.LatestIndex()))
	return nil
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persisting snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
