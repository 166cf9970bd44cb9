package state

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// eventSeqIndex indexes events by sequence number, big-endian so that the
// tree's order is the numbers' order (memdb's UintFieldIndex writes
// uvarints, whose byte order is not).
type eventSeqIndex struct{}

func (eventSeqIndex) FromObject(raw any) (bool, []byte, error) {
	ev, ok := raw.(*api.Event)
	if !ok {
		return false, nil, fmt.Errorf("event index: %T is not an event", raw)
	}
	return true, binary.BigEndian.AppendUint64(nil, ev.Index), nil
}

func (eventSeqIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("event index: want one argument, got %d", len(args))
	}
	v, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("event index: %T is not a uint64", args[0])
	}
	return binary.BigEndian.AppendUint64(nil, v), nil
}

// EventRing is how many events the state keeps; older ones are dropped
// as new ones come.
const EventRing = 4096

// eventSeq is the row of the index table that holds the last event's
// sequence number.
const eventSeq = "event_seq"

// SetApplyTime sets the time events recorded by the next writes carry: the
// FSM sets it to the log entry's append time before each apply, so every
// server records the same time.
func (s *Store) SetApplyTime(t time.Time) {
	s.applyMu.Lock()
	s.applyTime = t.UTC()
	s.applyMu.Unlock()
}

func (s *Store) now() time.Time {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.applyTime.IsZero() {
		return time.Now().UTC()
	}
	return s.applyTime
}

// addEvent records an event in txn at Raft index idx, dropping the oldest
// beyond EventRing.
func (s *Store) addEvent(txn *memdb.Txn, idx uint64, typ, subject, msg string, attrs map[string]string) error {
	raw, err := txn.First(tableIndex, "id", eventSeq)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	var seq uint64 = 1
	if raw != nil {
		seq = raw.(*indexEntry).Index + 1
	}
	ev := &api.Event{Index: seq, RaftIndex: idx, Time: s.now(), Type: typ, Subject: subject, Message: msg, Attrs: attrs}
	if err := txn.Insert(tableEvents, ev); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if seq > EventRing {
		if old, err := txn.First(tableEvents, "id", seq-EventRing); err == nil && old != nil {
			if err := txn.Delete(tableEvents, old); err != nil {
				return fmt.Errorf("event: %w", err)
			}
		}
	}
	if err := txn.Insert(tableIndex, &indexEntry{Table: eventSeq, Index: seq}); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	return setIndex(txn, tableEvents, idx)
}

// EventAppend records an event given from outside the state (a leader
// election, a gateway's ejection) at idx.
func (s *Store) EventAppend(idx uint64, ev *api.Event) error {
	if ev == nil || ev.Type == "" {
		return fmt.Errorf("event without a type")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	if err := s.addEvent(txn, idx, ev.Type, ev.Subject, ev.Message, ev.Attrs); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// Events returns up to limit events after sequence number after (0: from
// the oldest kept), of the given types (none: all), oldest first. It also
// returns the last sequence number (the index to block on) and the oldest
// one still kept, so that a reader can tell that it missed some.
func (s *Store) Events(ws memdb.WatchSet, after uint64, types []string, limit int) (last, oldest uint64, out []*api.Event, err error) {
	txn := s.readTxn()
	ch, raw, err := txn.FirstWatch(tableIndex, "id", eventSeq)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("events: %w", err)
	}
	if ws != nil {
		ws.Add(ch)
	}
	if raw != nil {
		last = raw.(*indexEntry).Index
	}
	if first, err := txn.First(tableEvents, "id"); err == nil && first != nil {
		oldest = first.(*api.Event).Index
	}
	it, err := txn.LowerBound(tableEvents, "id", after+1)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("events: %w", err)
	}
	out = []*api.Event{}
	for raw := it.Next(); raw != nil && (limit <= 0 || len(out) < limit); raw = it.Next() {
		ev := raw.(*api.Event)
		if len(types) == 0 || slices.Contains(types, ev.Type) {
			out = append(out, ev)
		}
	}
	return last, oldest, out, nil
}

// memberEvent is the event of a member's status change (none if its
// status did not change).
func memberEvent(old, n *api.Member) (typ, msg string) {
	if old != nil && old.Status == n.Status {
		return "", ""
	}
	switch n.Status {
	case api.MemberAlive:
		if old == nil {
			return api.EventMemberJoined, fmt.Sprintf("%s %s joined", n.Role, n.Name)
		}
		return api.EventMemberJoined, fmt.Sprintf("%s %s is alive again (was %s)", n.Role, n.Name, old.Status)
	case api.MemberFailed:
		return api.EventMemberFailed, fmt.Sprintf("%s %s failed", n.Role, n.Name)
	case api.MemberLeft:
		return api.EventMemberLeft, fmt.Sprintf("%s %s left", n.Role, n.Name)
	}
	return "", ""
}

// replicaPlanEvent is the event of a replica the controller placed or
// declared lost.
func replicaPlanEvent(old, n *api.Replica) (typ, msg string) {
	switch {
	case old == nil && n.Replaces != "":
		return api.EventReplicaMoved, fmt.Sprintf("%s placed on %s to replace %s", n.ID, n.Node, n.Replaces)
	case old == nil:
		return api.EventReplicaPlaced, fmt.Sprintf("%s placed on %s", n.ID, n.Node)
	case old.State != api.ReplicaLost && n.State == api.ReplicaLost:
		return api.EventReplicaLost, fmt.Sprintf("%s lost with node %s", n.ID, n.Node)
	}
	return "", ""
}

// replicaReportEvent is the event of a state a node reported.
func replicaReportEvent(old, n *api.Replica) (typ, msg string) {
	if old.State == n.State {
		return "", ""
	}
	switch n.State {
	case api.ReplicaRunning:
		return api.EventReplicaStarted, fmt.Sprintf("%s running on %s", n.ID, n.Node)
	case api.ReplicaFailed:
		msg := fmt.Sprintf("%s failed on %s", n.ID, n.Node)
		if n.Error != "" {
			msg += ": " + n.Error
		}
		return api.EventReplicaFailed, msg
	}
	return "", ""
}

func replicaAttrs(r *api.Replica) map[string]string {
	return map[string]string{"service": r.Service, "node": r.Node}
}
