package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// snapshotVersion is written first in every snapshot; Restore refuses
// other versions rather than guess.
const snapshotVersion = 1

// record is one line of a snapshot stream.
type record struct {
	Table string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// Snapshot is a point-in-time view of the store that can be persisted
// while writes continue.
type Snapshot struct {
	txn *memdb.Txn
	// Applied is the Raft index the snapshot reflects, recorded in its
	// header; it may exceed the last write (commands that changed
	// nothing still advance it).
	Applied uint64
}

// Snapshot takes a consistent view of the store. It is cheap: memdb's
// radix trees are immutable.
func (s *Store) Snapshot() *Snapshot {
	return &Snapshot{txn: s.readTxn()}
}

// snapshotTables lists the tables in the order they are written.
var snapshotTables = []string{tableMeta, tableIndex, tableMembers, tableSessions, tableKV, tableTombstones, tableServices, tableNodes, tableReplicas, tablePKI, tableJoinTokens, tableACLPolicies, tableACLTokens, tableEvents, tableVIPs}

// WriteTo streams the snapshot as JSON lines.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(map[string]uint64{"version": snapshotVersion, "applied": sn.Applied}); err != nil {
		return cw.n, fmt.Errorf("snapshot header: %w", err)
	}
	for _, t := range snapshotTables {
		it, err := sn.txn.Get(t, "id")
		if err != nil {
			return cw.n, fmt.Errorf("snapshot %s: %w", t, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			v, err := json.Marshal(raw)
			if err != nil {
				return cw.n, fmt.Errorf("snapshot %s: %w", t, err)
			}
			if err := enc.Encode(record{Table: t, Value: v}); err != nil {
				return cw.n, fmt.Errorf("snapshot %s: %w", t, err)
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("snapshot flush: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the store's contents with a snapshot written by
// WriteTo. On error the store is unchanged. Blocking queries on the old
// contents are woken through AbandonCh.
func (s *Store) Restore(r io.Reader) error {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	var hdr struct {
		Version int
		Applied uint64
	}
	if err := dec.Decode(&hdr); err != nil {
		return fmt.Errorf("restore: reading header: %w", err)
	}
	if hdr.Version != snapshotVersion {
		return fmt.Errorf("restore: snapshot version %d, this agent reads %d", hdr.Version, snapshotVersion)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for n := 1; ; n++ {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("restore: record %d: %w", n, err)
		}
		obj, err := newObject(rec.Table)
		if err != nil {
			return fmt.Errorf("restore: record %d: %w", n, err)
		}
		if err := json.Unmarshal(rec.Value, obj); err != nil {
			return fmt.Errorf("restore: record %d (%s): %w", n, rec.Table, err)
		}
		if err := txn.Insert(rec.Table, obj); err != nil {
			return fmt.Errorf("restore: record %d (%s): %w", n, rec.Table, err)
		}
	}
	txn.Commit()

	s.mu.Lock()
	old := s.abandonCh
	s.db, s.abandonCh = db, make(chan struct{})
	s.restoredApplied = hdr.Applied
	s.mu.Unlock()
	close(old)
	return nil
}

// RestoredApplied is the applied index recorded in the last snapshot
// restored (0 if none, or if the snapshot did not record one).
func (s *Store) RestoredApplied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.restoredApplied
}

func newObject(table string) (any, error) {
	switch table {
	case tableKV:
		return &api.KVPair{}, nil
	case tableTombstones:
		return &tombstone{}, nil
	case tableSessions:
		return &api.SessionEntry{}, nil
	case tableMembers:
		return &api.Member{}, nil
	case tableIndex:
		return &indexEntry{}, nil
	case tableMeta:
		return &metaEntry{}, nil
	case tableServices:
		return &api.ServiceEntry{}, nil
	case tableNodes:
		return &api.Node{}, nil
	case tableReplicas:
		return &api.Replica{}, nil
	case tablePKI:
		return &PKI{}, nil
	case tableJoinTokens:
		return &JoinTokenEntry{}, nil
	case tableACLPolicies:
		return &api.ACLPolicy{}, nil
	case tableACLTokens:
		return &ACLTokenEntry{}, nil
	case tableEvents:
		return &api.Event{}, nil
	case tableVIPs:
		return &api.VIPEntry{}, nil
	}
	return nil, fmt.Errorf("unknown table %q", table)
}
