package state

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// TestVIPHolderAndMoves: an upsert keeps the holder; a change of holder
// is remembered (the last 10) and recorded as an event; the table is in
// snapshots; blocking readers wake on a move.
func TestVIPHolderAndMoves(t *testing.T) {
	s := New()
	if err := s.VIPUpsert(1, &api.VIP{Name: "front", Address: "10.0.0.100/24"}); err != nil {
		t.Fatal(err)
	}
	ws := memdb.NewWatchSet()
	if _, v, err := s.VIP(ws, "front"); err != nil || v == nil || v.Holder != "" {
		t.Fatalf("%+v %v", v, err)
	}
	if err := s.VIPSetHolder(2, "front", "g1", "claimed: no holder"); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(time.Second)) {
		t.Fatal("a reader of the VIP was not woken by its move")
	}
	if err := s.VIPUpsert(3, &api.VIP{Name: "front", Address: "10.0.0.100/24", Preempt: true}); err != nil {
		t.Fatal(err)
	}
	_, v, _ := s.VIP(nil, "front")
	if v.Holder != "g1" || !v.Preempt || v.CreateIndex != 1 || v.ModifyIndex != 3 || len(v.Moves) != 1 {
		t.Fatalf("after the upsert: %+v", v)
	}
	for i := range 12 {
		if err := s.VIPSetHolder(uint64(4+i), "front", fmt.Sprintf("g%d", i%2+2), "lease expired"); err != nil {
			t.Fatal(err)
		}
	}
	_, v, _ = s.VIP(nil, "front")
	if len(v.Moves) != maxVIPMoves || v.Moves[maxVIPMoves-1].To != v.Holder {
		t.Fatalf("moves: %+v", v.Moves)
	}
	_, _, evs, _ := s.Events(nil, 0, nil, 0)
	moved := 0
	for _, e := range evs {
		if e.Type == api.EventVIPMoved {
			moved++
		}
	}
	if moved != 13 {
		t.Fatalf("%d vip.moved events, want 13", moved)
	}
	// Same holder again: no move.
	if err := s.VIPSetHolder(20, "front", v.Holder, "renewed"); err != nil {
		t.Fatal(err)
	}
	if _, v2, _ := s.VIP(nil, "front"); v2.ModifyIndex != v.ModifyIndex {
		t.Fatal("setting the same holder changed the VIP")
	}

	r := New()
	if err := r.Restore(bytes.NewReader(snapshotBytes(t, s))); err != nil {
		t.Fatal(err)
	}
	if _, rv, _ := r.VIP(nil, "front"); rv == nil || rv.Holder != v.Holder || len(rv.Moves) != maxVIPMoves {
		t.Fatalf("after a snapshot round trip: %+v", rv)
	}
	if err := s.VIPDelete(30, "front"); err != nil {
		t.Fatal(err)
	}
	if err := s.VIPDelete(31, "front"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing VIP: %v", err)
	}
	if err := s.VIPSetHolder(32, "front", "g1", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claiming a missing VIP: %v", err)
	}
}
