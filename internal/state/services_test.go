package state

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

func TestServiceUpsertDeleteAndDrain(t *testing.T) {
	s := New()
	svc := &api.Service{Kind: "service", Name: "web", Routes: []api.Route{{Host: "a.com"}},
		Backends: []api.Backend{{Address: "127.0.0.1:1"}, {Address: "127.0.0.1:2"}}}
	if err := s.ServiceUpsert(5, svc); err != nil {
		t.Fatal(err)
	}
	ws := memdb.NewWatchSet()
	idx, e, err := s.ServiceGet(ws, "web")
	if err != nil || e == nil || idx != 5 || e.CreateIndex != 5 || e.ModifyIndex != 5 || e.Kind != "" {
		t.Fatalf("get = %d %+v %v", idx, e, err)
	}
	// Replacing keeps CreateIndex and fires watches.
	svc2 := *svc
	svc2.Algorithm = "random"
	if err := s.ServiceUpsert(8, &svc2); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(time.Second)) {
		t.Fatal("watch did not fire on upsert")
	}
	_, e, _ = s.ServiceGet(nil, "web")
	if e.CreateIndex != 5 || e.ModifyIndex != 8 || e.Algorithm != "random" {
		t.Fatalf("after replace: %+v", e)
	}
	if err := s.ServiceSetDrain(9, "web", "127.0.0.1:2", true); err != nil {
		t.Fatal(err)
	}
	_, e, _ = s.ServiceGet(nil, "web")
	if !e.Backends[1].Drain || e.Backends[0].Drain || e.ModifyIndex != 9 {
		t.Fatalf("after drain: %+v", e.Backends)
	}
	if svc2.Backends[1].Drain {
		t.Fatal("drain changed the caller's slice")
	}
	if err := s.ServiceSetDrain(10, "web", "127.0.0.1:3", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drain of unknown backend: %v", err)
	}
	if err := s.ServiceSetDrain(10, "nope", "127.0.0.1:1", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("drain of unknown service: %v", err)
	}
	if err := s.ServiceUpsert(11, &api.Service{Name: "api"}); err != nil {
		t.Fatal(err)
	}
	idx, list, _ := s.ServiceList(nil)
	if idx != 11 || len(list) != 2 || list[0].Name != "api" || list[1].Name != "web" {
		t.Fatalf("list = %d %+v", idx, list)
	}
	if err := s.ServiceDelete(12, "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.ServiceDelete(13, "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	idx, e, _ = s.ServiceGet(nil, "web")
	if e != nil || idx != 12 {
		t.Fatalf("after delete: %d %+v", idx, e)
	}
	if s.LatestIndex() != 12 {
		t.Fatalf("latest index %d", s.LatestIndex())
	}
}
