package state

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

func TestEventRingKeepsTheNewestInOrder(t *testing.T) {
	s := New()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.SetApplyTime(at)
	total := EventRing + 300
	for i := 1; i <= total; i++ {
		typ := api.EventLeaderElected
		if i%2 == 0 {
			typ = api.EventMemberFailed
		}
		if err := s.EventAppend(uint64(1000+i), &api.Event{Type: typ, Subject: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	last, oldest, evs, err := s.Events(nil, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if last != uint64(total) || oldest != uint64(total-EventRing+1) || len(evs) != EventRing {
		t.Fatalf("last %d oldest %d kept %d; want %d, %d, %d", last, oldest, len(evs), total, total-EventRing+1, EventRing)
	}
	for i, ev := range evs {
		if ev.Index != oldest+uint64(i) || ev.RaftIndex != 1000+ev.Index || !ev.Time.Equal(at) {
			t.Fatalf("event %d out of order or wrong: %+v", i, ev)
		}
	}
	// After an index (the ring holds indexes beyond 127 and 16383, where
	// uvarint keys would sort wrongly).
	_, _, after, _ := s.Events(nil, uint64(total-3), nil, 0)
	if len(after) != 3 || after[0].Index != uint64(total-2) {
		t.Fatalf("events after %d: %+v", total-3, after)
	}
	_, _, some, _ := s.Events(nil, 0, []string{api.EventMemberFailed}, 10)
	if len(some) != 10 || some[0].Type != api.EventMemberFailed || some[9].Index <= some[0].Index {
		t.Fatalf("filtered and limited: %+v", some)
	}
	// A watch fires on the next event.
	ws := memdb.NewWatchSet()
	_, _, _, _ = s.Events(ws, last, nil, 0)
	if err := s.EventAppend(9999, &api.Event{Type: api.EventMemberJoined}); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(time.Second)) {
		t.Fatal("the watch did not fire on a new event")
	}
	if err := s.EventAppend(1, &api.Event{}); err == nil {
		t.Fatal("an event without a type was recorded")
	}
}

func TestStateChangesRecordEvents(t *testing.T) {
	s := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.MemberUpsert(1, &api.Member{Name: "n1", Status: api.MemberAlive, Role: "client"}))
	must(s.MemberUpsert(2, &api.Member{Name: "n1", Status: api.MemberAlive, Role: "client"})) // no change, no event
	must(s.MemberUpsert(3, &api.Member{Name: "n1", Status: api.MemberFailed, Role: "client"}))
	must(s.ReplicaApplyPlan(4, &ReplicaPlan{Upsert: []*api.Replica{{ID: "web-1", Service: "web", Node: "n1", State: api.ReplicaPending}}}))
	must(s.ReplicaReport(5, "n1", []api.ReplicaStatus{{ID: "web-1", State: api.ReplicaRunning}}))
	must(s.ReplicaApplyPlan(6, &ReplicaPlan{Upsert: []*api.Replica{{ID: "web-1", Service: "web", Node: "n1", State: api.ReplicaLost},
		{ID: "web-2", Service: "web", Node: "n2", Replaces: "web-1"}}}))
	must(s.ReplicaReport(7, "n2", []api.ReplicaStatus{{ID: "web-2", State: api.ReplicaFailed, Error: "exit 1"}}))
	_, _, evs, err := s.Events(nil, 0, nil, 0)
	must(err)
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Type+" "+ev.Subject)
	}
	want := []string{"member.joined n1", "member.failed n1", "replica.placed web-1", "replica.started web-1",
		"replica.lost web-1", "replica.moved web-2", "replica.failed web-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
	if last := evs[len(evs)-1]; last.Message != "web-2 failed on n2: exit 1" || last.Attrs["service"] != "web" {
		t.Fatalf("failure event: %+v", last)
	}
}
