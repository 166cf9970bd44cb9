package state

import (
	"testing"

	"github.com/herd-cluster/herd/api"
)

func TestSetClusterID(t *testing.T) {
	tests := []struct {
		name       string
		calls      []string // IDs set at indexes 10, 11, ...
		wantID     string
		wantLatest uint64
	}{
		{name: "unset", calls: nil, wantID: "", wantLatest: 0},
		{name: "first set wins", calls: []string{"c1"}, wantID: "c1", wantLatest: 10},
		{name: "later sets are ignored", calls: []string{"c1", "c2", "c3"}, wantID: "c1", wantLatest: 10},
		{name: "same ID again is a no-op", calls: []string{"c1", "c1"}, wantID: "c1", wantLatest: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			for i, id := range tc.calls {
				if err := s.SetClusterID(uint64(10+i), id); err != nil {
					t.Fatalf("SetClusterID(%q): %v", id, err)
				}
			}
			if got := s.ClusterID(); got != tc.wantID {
				t.Errorf("ClusterID = %q, want %q", got, tc.wantID)
			}
			if li := s.LatestIndex(); li != tc.wantLatest {
				t.Errorf("LatestIndex = %d, want %d", li, tc.wantLatest)
			}
		})
	}
}

func TestLatestIndex(t *testing.T) {
	s := New()
	steps := []struct {
		name string
		do   func() error
		want uint64
	}{
		{name: "empty", do: func() error { return nil }, want: 0},
		{name: "kv write", do: func() error { return s.KVSet(3, &api.KVPair{Key: "k"}) }, want: 3},
		{name: "session write", do: func() error { return s.SessionCreate(7, &api.SessionEntry{ID: "s"}) }, want: 7},
		{name: "member write", do: func() error { return s.MemberUpsert(9, &api.Member{Name: "m"}) }, want: 9},
		{name: "cluster id", do: func() error { return s.SetClusterID(11, "c") }, want: 11},
		{name: "kv delete", do: func() error { return s.KVDelete(12, "k") }, want: 12},
		{name: "refused lock does not count", do: func() error {
			_, err := s.KVLock(13, &api.KVPair{Key: "x"}, "missing-session")
			if err == nil {
				t.Error("KVLock with a missing session succeeded")
			}
			return nil
		}, want: 12},
		{name: "member delete", do: func() error { return s.MemberDelete(14, "m") }, want: 14},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if got := s.LatestIndex(); got != st.want {
				t.Errorf("LatestIndex = %d, want %d", got, st.want)
			}
		})
	}
}
