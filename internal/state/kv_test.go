package state

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

func TestKVSet(t *testing.T) {
	tests := []struct {
		name string
		// setup runs before the write under test at index 100.
		setup func(t *testing.T, s *Store)
		in    api.KVPair
		want  api.KVPair
	}{
		{
			name: "new key gets CreateIndex = ModifyIndex = idx",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 5, "other", "x")
			},
			in:   api.KVPair{Key: "k", Flags: 7, Value: []byte("v1")},
			want: api.KVPair{Key: "k", CreateIndex: 100, ModifyIndex: 100, Flags: 7, Value: []byte("v1")},
		},
		{
			name: "new key ignores caller's CreateIndex and ModifyIndex",
			in:   api.KVPair{Key: "k", CreateIndex: 3, ModifyIndex: 4, Value: []byte("v1")},
			want: api.KVPair{Key: "k", CreateIndex: 100, ModifyIndex: 100, Value: []byte("v1")},
		},
		{
			name: "existing key keeps CreateIndex and takes new value, flags and ModifyIndex",
			setup: func(t *testing.T, s *Store) {
				if err := s.KVSet(10, &api.KVPair{Key: "k", Flags: 1, Value: []byte("old")}); err != nil {
					t.Fatal(err)
				}
			},
			in:   api.KVPair{Key: "k", Flags: 2, Value: []byte("new")},
			want: api.KVPair{Key: "k", CreateIndex: 10, ModifyIndex: 100, Flags: 2, Value: []byte("new")},
		},
		{
			name: "existing locked key keeps Session and LockIndex",
			setup: func(t *testing.T, s *Store) {
				mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
				mustKVSet(t, s, 10, "k", "old")
				mustLock(t, s, 20, "k", "locked", "s1")
			},
			in:   api.KVPair{Key: "k", Value: []byte("new")},
			want: api.KVPair{Key: "k", CreateIndex: 10, ModifyIndex: 100, LockIndex: 1, Session: "s1", Value: []byte("new")},
		},
		{
			name: "plain write cannot steal or clear a lock",
			setup: func(t *testing.T, s *Store) {
				mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
				mustLock(t, s, 20, "k", "locked", "s1")
			},
			in:   api.KVPair{Key: "k", Session: "intruder", LockIndex: 9, Value: []byte("new")},
			want: api.KVPair{Key: "k", CreateIndex: 20, ModifyIndex: 100, LockIndex: 1, Session: "s1", Value: []byte("new")},
		},
		{
			name: "unlocked key that was locked before keeps LockIndex",
			setup: func(t *testing.T, s *Store) {
				mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
				mustLock(t, s, 20, "k", "locked", "s1")
				if ok, err := s.KVUnlock(21, &api.KVPair{Key: "k"}, "s1"); err != nil || !ok {
					t.Fatalf("KVUnlock = %v, %v", ok, err)
				}
			},
			in:   api.KVPair{Key: "k", Value: []byte("new")},
			want: api.KVPair{Key: "k", CreateIndex: 20, ModifyIndex: 100, LockIndex: 1, Value: []byte("new")},
		},
		{
			name: "re-creating a deleted key starts a new CreateIndex",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 10, "k", "old")
				mustKVDelete(t, s, 11, "k")
			},
			in:   api.KVPair{Key: "k", Value: []byte("new")},
			want: api.KVPair{Key: "k", CreateIndex: 100, ModifyIndex: 100, Value: []byte("new")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			in := tc.in
			arg := in
			if err := s.KVSet(100, &arg); err != nil {
				t.Fatalf("KVSet: %v", err)
			}
			if !reflect.DeepEqual(arg, in) {
				t.Errorf("KVSet modified its argument: got %+v, passed %+v", arg, in)
			}
			idx, got := mustGet(t, s, tc.in.Key)
			if got == nil {
				t.Fatalf("KVGet(%q) = nil after KVSet", tc.in.Key)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("stored entry:\n got  %+v\n want %+v", *got, tc.want)
			}
			if idx != 100 {
				t.Errorf("KVGet index = %d, want the entry's ModifyIndex 100", idx)
			}
			if li := s.LatestIndex(); li != 100 {
				t.Errorf("LatestIndex = %d, want 100", li)
			}
			if _, ok := tombstoneIndexes(t, s)[tc.in.Key]; ok {
				t.Errorf("tombstone for %q survives a write of the key", tc.in.Key)
			}
		})
	}
}

func TestKVCAS(t *testing.T) {
	// Each case starts from: "exists" written at 10 and modified at 20.
	setup := func(t *testing.T) *Store {
		s := New()
		if err := s.KVSet(10, &api.KVPair{Key: "exists", Flags: 1, Value: []byte("v10")}); err != nil {
			t.Fatal(err)
		}
		if err := s.KVSet(20, &api.KVPair{Key: "exists", Flags: 1, Value: []byte("v20")}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name   string
		key    string
		cas    uint64
		wantOK bool
		// want is the entry after the call; nil: the key must be absent.
		want *api.KVPair
	}{
		{
			name: "cas=0 creates a missing key", key: "new", cas: 0, wantOK: true,
			want: &api.KVPair{Key: "new", CreateIndex: 30, ModifyIndex: 30, Flags: 9, Value: []byte("cas")},
		},
		{
			name: "cas=0 refuses an existing key", key: "exists", cas: 0, wantOK: false,
			want: &api.KVPair{Key: "exists", CreateIndex: 10, ModifyIndex: 20, Flags: 1, Value: []byte("v20")},
		},
		{
			name: "cas=ModifyIndex writes", key: "exists", cas: 20, wantOK: true,
			want: &api.KVPair{Key: "exists", CreateIndex: 10, ModifyIndex: 30, Flags: 9, Value: []byte("cas")},
		},
		{
			name: "cas=CreateIndex (stale) refuses", key: "exists", cas: 10, wantOK: false,
			want: &api.KVPair{Key: "exists", CreateIndex: 10, ModifyIndex: 20, Flags: 1, Value: []byte("v20")},
		},
		{
			name: "cas greater than ModifyIndex refuses", key: "exists", cas: 21, wantOK: false,
			want: &api.KVPair{Key: "exists", CreateIndex: 10, ModifyIndex: 20, Flags: 1, Value: []byte("v20")},
		},
		{
			name: "cas=N on a missing key refuses and does not create", key: "new", cas: 20, wantOK: false,
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			before := snapshotBytes(t, s)
			ok, err := s.KVCAS(30, &api.KVPair{Key: tc.key, Flags: 9, Value: []byte("cas")}, tc.cas)
			if err != nil {
				t.Fatalf("KVCAS: %v", err)
			}
			if ok != tc.wantOK {
				t.Fatalf("KVCAS(cas=%d) = %v, want %v", tc.cas, ok, tc.wantOK)
			}
			_, got := mustGet(t, s, tc.key)
			switch {
			case tc.want == nil && got != nil:
				t.Errorf("key %q = %+v, want absent", tc.key, *got)
			case tc.want != nil && (got == nil || !reflect.DeepEqual(*got, *tc.want)):
				t.Errorf("key %q:\n got  %+v\n want %+v", tc.key, got, *tc.want)
			}
			if !ok {
				if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
					t.Errorf("a refused CAS changed the store:\n before %s\n after  %s", before, after)
				}
				if li := s.LatestIndex(); li != 20 {
					t.Errorf("LatestIndex after refused CAS = %d, want 20", li)
				}
			} else if li := s.LatestIndex(); li != 30 {
				t.Errorf("LatestIndex after CAS = %d, want 30", li)
			}
		})
	}
}

func TestKVCASKeepsLock(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
	mustLock(t, s, 5, "k", "locked", "s1")
	ok, err := s.KVCAS(6, &api.KVPair{Key: "k", Value: []byte("cas")}, 5)
	if err != nil || !ok {
		t.Fatalf("KVCAS = %v, %v; want true", ok, err)
	}
	_, e := mustGet(t, s, "k")
	want := api.KVPair{Key: "k", CreateIndex: 5, ModifyIndex: 6, LockIndex: 1, Session: "s1", Value: []byte("cas")}
	if !reflect.DeepEqual(*e, want) {
		t.Errorf("after CAS on a locked key:\n got  %+v\n want %+v", *e, want)
	}
}

func TestKVDelete(t *testing.T) {
	tests := []struct {
		name          string
		key           string
		wantLatest    uint64
		wantTombstone bool
	}{
		{name: "existing key is removed and tombstoned", key: "a", wantLatest: 50, wantTombstone: true},
		{name: "missing key succeeds and changes nothing", key: "zzz", wantLatest: 11, wantTombstone: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustKVSet(t, s, 10, "a", "1")
			mustKVSet(t, s, 11, "ab", "2")
			if err := s.KVDelete(50, tc.key); err != nil {
				t.Fatalf("KVDelete(%q): %v", tc.key, err)
			}
			if _, e := mustGet(t, s, tc.key); e != nil {
				t.Errorf("key %q still present: %+v", tc.key, *e)
			}
			if _, e := mustGet(t, s, "ab"); e == nil {
				t.Errorf("sibling key %q was removed", "ab")
			}
			if li := s.LatestIndex(); li != tc.wantLatest {
				t.Errorf("LatestIndex = %d, want %d", li, tc.wantLatest)
			}
			ti, ok := tombstoneIndexes(t, s)[tc.key]
			if ok != tc.wantTombstone || (ok && ti != 50) {
				t.Errorf("tombstone for %q = (%d, %v), want present=%v at 50", tc.key, ti, ok, tc.wantTombstone)
			}
		})
	}
}

func TestKVDeleteCAS(t *testing.T) {
	tests := []struct {
		name        string
		key         string
		cas         uint64
		wantOK      bool
		wantPresent bool
	}{
		{name: "matching ModifyIndex deletes", key: "k", cas: 20, wantOK: true, wantPresent: false},
		{name: "stale index refuses", key: "k", cas: 10, wantOK: false, wantPresent: true},
		{name: "future index refuses", key: "k", cas: 21, wantOK: false, wantPresent: true},
		{name: "cas=0 on an existing key refuses", key: "k", cas: 0, wantOK: false, wantPresent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustKVSet(t, s, 10, "k", "v10")
			mustKVSet(t, s, 20, "k", "v20")
			before := snapshotBytes(t, s)
			ok, err := s.KVDeleteCAS(30, tc.key, tc.cas)
			if err != nil {
				t.Fatalf("KVDeleteCAS: %v", err)
			}
			if ok != tc.wantOK {
				t.Errorf("KVDeleteCAS(cas=%d) = %v, want %v", tc.cas, ok, tc.wantOK)
			}
			_, e := mustGet(t, s, tc.key)
			if (e != nil) != tc.wantPresent {
				t.Errorf("key present = %v, want %v", e != nil, tc.wantPresent)
			}
			if !ok {
				if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
					t.Errorf("a refused delete-CAS changed the store")
				}
			} else {
				if ti := tombstoneIndexes(t, s)[tc.key]; ti != 30 {
					t.Errorf("tombstone index = %d, want 30", ti)
				}
				if li := s.LatestIndex(); li != 30 {
					t.Errorf("LatestIndex = %d, want 30", li)
				}
			}
		})
	}
}

// Consul's kvsDeleteCASTxn returns true when the key does not exist
// ("return entry == nil, nil"), so a Consul client's DeleteCAS of an
// already-deleted key reports success. herd reports false.
func TestKVDeleteCASMissingKeyConsulCompat(t *testing.T) {
	s := New()
	mustKVSet(t, s, 10, "other", "x")
	for _, cas := range []uint64{0, 10, 99} {
		ok, err := s.KVDeleteCAS(20, "missing", cas)
		if err != nil || !ok {
			t.Errorf("KVDeleteCAS(missing, cas=%d) = %v, %v; want true, nil like Consul", cas, ok, err)
		}
	}
	if li := s.LatestIndex(); li != 10 {
		t.Errorf("LatestIndex = %d, want 10 (nothing deleted)", li)
	}
}

func TestKVDeleteTree(t *testing.T) {
	all := []string{"a", "a/", "a/b", "a/b/c", "a/c", "ab", "ab/x", "b", "b/a/x"}
	tests := []struct {
		name   string
		prefix string
		want   []string // keys left
	}{
		{name: "prefix with slash spares siblings", prefix: "a/", want: []string{"a", "ab", "ab/x", "b", "b/a/x"}},
		{name: "nested prefix", prefix: "a/b", want: []string{"a", "a/", "a/c", "ab", "ab/x", "b", "b/a/x"}},
		{name: "bare prefix deletes by string prefix", prefix: "a", want: []string{"b", "b/a/x"}},
		{name: "prefix matching nothing", prefix: "zzz", want: all},
		{name: "empty prefix deletes everything", prefix: "", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			for i, k := range all {
				mustKVSet(t, s, uint64(10+i), k, "v")
			}
			before := s.LatestIndex()
			if err := s.KVDeleteTree(100, tc.prefix); err != nil {
				t.Fatalf("KVDeleteTree(%q): %v", tc.prefix, err)
			}
			_, left := mustList(t, s, "")
			if got := keysOf(left); !slices.Equal(got, tc.want) {
				t.Errorf("keys left = %q, want %q", got, tc.want)
			}
			tombs := tombstoneIndexes(t, s)
			for _, k := range all {
				_, tombed := tombs[k]
				deleted := !slices.Contains(tc.want, k)
				if tombed != deleted {
					t.Errorf("tombstone for %q = %v, want %v", k, tombed, deleted)
				}
				if tombed && tombs[k] != 100 {
					t.Errorf("tombstone index for %q = %d, want 100", k, tombs[k])
				}
			}
			wantLatest := uint64(100)
			if len(tc.want) == len(all) {
				wantLatest = before
			}
			if li := s.LatestIndex(); li != wantLatest {
				t.Errorf("LatestIndex = %d, want %d", li, wantLatest)
			}
		})
	}
}

func TestKVGetIndex(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *Store)
		key       string
		wantIdx   uint64
		wantFound bool
	}{
		{
			name: "empty store, missing key", key: "k", wantIdx: 1,
		},
		{
			name: "existing key returns its ModifyIndex, not the table's",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 5, "k", "v")
				mustKVSet(t, s, 9, "other", "v")
			},
			key: "k", wantIdx: 5, wantFound: true,
		},
		{
			name: "missing key returns the table's last write",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 5, "a", "v")
				mustKVSet(t, s, 9, "b", "v")
			},
			key: "k", wantIdx: 9,
		},
		{
			name: "deleted key returns the delete's index",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 5, "k", "v")
				mustKVDelete(t, s, 12, "k")
			},
			key: "k", wantIdx: 12,
		},
		{
			name: "missing key ignores other tables' writes",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 5, "a", "v")
				mustSession(t, s, 40, &api.SessionEntry{ID: "s1"})
			},
			key: "k", wantIdx: 5,
		},
		{
			name: "missing key with only other tables written is still >= 1",
			setup: func(t *testing.T, s *Store) {
				mustSession(t, s, 40, &api.SessionEntry{ID: "s1"})
			},
			key: "k", wantIdx: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			idx, e := mustGet(t, s, tc.key)
			if (e != nil) != tc.wantFound {
				t.Errorf("found = %v, want %v", e != nil, tc.wantFound)
			}
			if idx != tc.wantIdx {
				t.Errorf("index = %d, want %d", idx, tc.wantIdx)
			}
		})
	}
}

func TestKVListIndex(t *testing.T) {
	// base: a/1@5 a/2@7 b@9
	base := func(t *testing.T, s *Store) {
		mustKVSet(t, s, 5, "a/1", "v")
		mustKVSet(t, s, 7, "a/2", "v")
		mustKVSet(t, s, 9, "b", "v")
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, s *Store)
		prefix   string
		wantIdx  uint64
		wantKeys []string
	}{
		{name: "empty store", prefix: "a/", wantIdx: 1, wantKeys: []string{}},
		{name: "empty store, empty prefix", prefix: "", wantIdx: 1, wantKeys: []string{}},
		{
			name: "max ModifyIndex under the prefix, not the table's", setup: base,
			prefix: "a/", wantIdx: 7, wantKeys: []string{"a/1", "a/2"},
		},
		{
			name: "empty prefix lists everything in key order", setup: base,
			prefix: "", wantIdx: 9, wantKeys: []string{"a/1", "a/2", "b"},
		},
		{
			name: "writes outside the prefix do not move it",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVSet(t, s, 20, "b", "v2")
				mustKVSet(t, s, 21, "a", "not under a/")
				mustKVSet(t, s, 22, "ab/x", "not under a/")
				mustKVDelete(t, s, 23, "b")
			},
			prefix: "a/", wantIdx: 7, wantKeys: []string{"a/1", "a/2"},
		},
		{
			name: "deleting the newest key under the prefix raises the index",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVDelete(t, s, 30, "a/2")
			},
			prefix: "a/", wantIdx: 30, wantKeys: []string{"a/1"},
		},
		{
			name: "deleting an older key under the prefix raises the index",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVDelete(t, s, 30, "a/1")
			},
			prefix: "a/", wantIdx: 30, wantKeys: []string{"a/2"},
		},
		{
			name: "a deleted sibling outside the prefix does not count",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVSet(t, s, 30, "ab", "v")
				mustKVDelete(t, s, 31, "ab")
			},
			prefix: "a/", wantIdx: 7, wantKeys: []string{"a/1", "a/2"},
		},
		{
			name: "prefix with only tombstones reports the newest delete",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVDelete(t, s, 30, "a/1")
				mustKVDelete(t, s, 31, "a/2")
				mustKVSet(t, s, 40, "b", "later write elsewhere")
			},
			prefix: "a/", wantIdx: 31, wantKeys: []string{},
		},
		{
			name: "delete tree raises the index",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				if err := s.KVDeleteTree(30, "a/"); err != nil {
					t.Fatal(err)
				}
			},
			prefix: "a/", wantIdx: 30, wantKeys: []string{},
		},
		{
			name: "re-creating a deleted key reports the write",
			setup: func(t *testing.T, s *Store) {
				base(t, s)
				mustKVDelete(t, s, 30, "a/2")
				mustKVSet(t, s, 31, "a/2", "again")
			},
			prefix: "a/", wantIdx: 31, wantKeys: []string{"a/1", "a/2"},
		},
		{
			name: "prefix never written falls back to the table index", setup: base,
			prefix: "c/", wantIdx: 9, wantKeys: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			idx, out := mustList(t, s, tc.prefix)
			if idx != tc.wantIdx {
				t.Errorf("KVList(%q) index = %d, want %d", tc.prefix, idx, tc.wantIdx)
			}
			if got := keysOf(out); !slices.Equal(got, tc.wantKeys) {
				t.Errorf("KVList(%q) keys = %q, want %q", tc.prefix, got, tc.wantKeys)
			}
		})
	}
}

// Every change under a prefix must move the listing's index, so a blocking
// client waiting on the old index wakes up.
func TestKVListIndexMovesOnEveryChange(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1", Behavior: api.SessionBehaviorDelete})
	mustKVSet(t, s, 2, "a/1", "v")
	mustKVSet(t, s, 3, "a/2", "v")
	steps := []struct {
		name string
		do   func(idx uint64) error
	}{
		{name: "update", do: func(idx uint64) error { return s.KVSet(idx, &api.KVPair{Key: "a/1", Value: []byte("x")}) }},
		{name: "delete newest", do: func(idx uint64) error { return s.KVDelete(idx, "a/1") }},
		{name: "re-create", do: func(idx uint64) error { return s.KVSet(idx, &api.KVPair{Key: "a/1"}) }},
		{name: "lock", do: func(idx uint64) error {
			_, err := s.KVLock(idx, &api.KVPair{Key: "a/3"}, "s1")
			return err
		}},
		{name: "session destroy deletes held key", do: func(idx uint64) error { return s.SessionDestroy(idx, "s1") }},
		{name: "delete-cas", do: func(idx uint64) error {
			_, e := mustGet(t, s, "a/2")
			ok, err := s.KVDeleteCAS(idx, "a/2", e.ModifyIndex)
			if err == nil && !ok {
				err = errors.New("delete-cas refused")
			}
			return err
		}},
		{name: "delete tree", do: func(idx uint64) error { return s.KVDeleteTree(idx, "a/") }},
	}
	prev, _ := mustList(t, s, "a/")
	idx := uint64(10)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			idx++
			if err := st.do(idx); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			got, _ := mustList(t, s, "a/")
			if got != idx {
				t.Errorf("index after %s at %d = %d (was %d), want %d", st.name, idx, got, prev, idx)
			}
			prev = got
		})
	}
}

func TestKVGetWatch(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *Store)
		key    string
		change func(t *testing.T, s *Store)
		fires  bool
	}{
		{
			name:   "existing key updated",
			setup:  func(t *testing.T, s *Store) { mustKVSet(t, s, 1, "k", "v") },
			key:    "k",
			change: func(t *testing.T, s *Store) { mustKVSet(t, s, 2, "k", "v2") },
			fires:  true,
		},
		{
			name:   "existing key deleted",
			setup:  func(t *testing.T, s *Store) { mustKVSet(t, s, 1, "k", "v") },
			key:    "k",
			change: func(t *testing.T, s *Store) { mustKVDelete(t, s, 2, "k") },
			fires:  true,
		},
		{
			name:   "missing key created",
			setup:  func(t *testing.T, s *Store) { mustKVSet(t, s, 1, "other", "v") },
			key:    "k",
			change: func(t *testing.T, s *Store) { mustKVSet(t, s, 2, "k", "v") },
			fires:  true,
		},
		{
			name: "existing key locked",
			setup: func(t *testing.T, s *Store) {
				mustSession(t, s, 1, &api.SessionEntry{ID: "s1"})
				mustKVSet(t, s, 2, "k", "v")
			},
			key:    "k",
			change: func(t *testing.T, s *Store) { mustLock(t, s, 3, "k", "v", "s1") },
			fires:  true,
		},
		{
			name: "existing key, another key changes",
			setup: func(t *testing.T, s *Store) {
				mustKVSet(t, s, 1, "k", "v")
				mustKVSet(t, s, 2, "other", "v")
			},
			key:    "k",
			change: func(t *testing.T, s *Store) { mustKVSet(t, s, 3, "other", "v2") },
			fires:  false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			ws := memdb.NewWatchSet()
			if _, _, err := s.KVGet(ws, tc.key); err != nil {
				t.Fatal(err)
			}
			tc.change(t, s)
			if tc.fires {
				assertFires(t, ws, tc.name)
			} else {
				assertQuiet(t, ws, tc.name)
			}
		})
	}
}

func TestKVListWatch(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, s *Store)
	}{
		{name: "key under prefix deleted", change: func(t *testing.T, s *Store) { mustKVDelete(t, s, 10, "a/2") }},
		{name: "key under prefix updated", change: func(t *testing.T, s *Store) { mustKVSet(t, s, 10, "a/1", "new") }},
		{name: "key under prefix created", change: func(t *testing.T, s *Store) { mustKVSet(t, s, 10, "a/3", "new") }},
		{name: "delete tree", change: func(t *testing.T, s *Store) {
			if err := s.KVDeleteTree(10, "a/"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustKVSet(t, s, 1, "a/1", "v")
			mustKVSet(t, s, 2, "a/2", "v")
			mustKVSet(t, s, 3, "b", "v")
			ws := memdb.NewWatchSet()
			if _, _, err := s.KVList(ws, "a/"); err != nil {
				t.Fatal(err)
			}
			tc.change(t, s)
			assertFires(t, ws, tc.name)
		})
	}
	t.Run("empty prefix fires when the first key appears", func(t *testing.T) {
		s := New()
		ws := memdb.NewWatchSet()
		if _, _, err := s.KVList(ws, "a/"); err != nil {
			t.Fatal(err)
		}
		mustKVSet(t, s, 1, "a/x", "v")
		assertFires(t, ws, "first key")
	})
}

func TestKVLock(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
	mustSession(t, s, 2, &api.SessionEntry{ID: "s2", Node: "n2"})

	// Steps run in order against one store; each checks the call's result
	// and the key's state after it.
	steps := []struct {
		name        string
		op          string // lock, unlock
		session     string
		value       string
		wantOK      bool
		wantErr     error
		wantSession string
		wantLockIdx uint64
		wantValue   string
		wantModify  uint64 // 0: key must be absent
	}{
		{name: "unknown session errors and creates nothing", op: "lock", session: "nope", value: "x", wantErr: ErrNotFound},
		{name: "unlock of a missing key", op: "unlock", session: "s1", value: "x", wantOK: false},
		{name: "first lock", op: "lock", session: "s1", value: "v1", wantOK: true, wantSession: "s1", wantLockIdx: 1, wantValue: "v1", wantModify: 13},
		{name: "re-lock by holder keeps LockIndex, updates value", op: "lock", session: "s1", value: "v2", wantOK: true, wantSession: "s1", wantLockIdx: 1, wantValue: "v2", wantModify: 14},
		{name: "lock by another session is refused", op: "lock", session: "s2", value: "steal", wantOK: false, wantSession: "s1", wantLockIdx: 1, wantValue: "v2", wantModify: 14},
		{name: "unlock by non-holder is refused", op: "unlock", session: "s2", value: "steal", wantOK: false, wantSession: "s1", wantLockIdx: 1, wantValue: "v2", wantModify: 14},
		{name: "unknown session still errors on a held key", op: "lock", session: "nope", value: "steal", wantErr: ErrNotFound, wantSession: "s1", wantLockIdx: 1, wantValue: "v2", wantModify: 14},
		{name: "unlock by holder", op: "unlock", session: "s1", value: "released", wantOK: true, wantSession: "", wantLockIdx: 1, wantValue: "released", wantModify: 18},
		{name: "second unlock is refused", op: "unlock", session: "s1", value: "again", wantOK: false, wantSession: "", wantLockIdx: 1, wantValue: "released", wantModify: 18},
		{name: "lock by another session counts up", op: "lock", session: "s2", value: "v3", wantOK: true, wantSession: "s2", wantLockIdx: 2, wantValue: "v3", wantModify: 20},
		{name: "former holder is refused", op: "lock", session: "s1", value: "v4", wantOK: false, wantSession: "s2", wantLockIdx: 2, wantValue: "v3", wantModify: 20},
	}
	idx := uint64(10)
	for _, st := range steps {
		idx++
		ok := t.Run(st.name, func(t *testing.T) {
			e := &api.KVPair{Key: "lk", Flags: 3, Value: []byte(st.value)}
			var ok bool
			var err error
			switch st.op {
			case "lock":
				ok, err = s.KVLock(idx, e, st.session)
			case "unlock":
				ok, err = s.KVUnlock(idx, e, st.session)
			}
			if st.wantErr != nil {
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("err = %v, want %v", err, st.wantErr)
				}
				if ok {
					t.Errorf("ok = true with an error")
				}
			} else if err != nil || ok != st.wantOK {
				t.Fatalf("%s(%s) = %v, %v; want %v, nil", st.op, st.session, ok, err, st.wantOK)
			}
			_, got := mustGet(t, s, "lk")
			if st.wantModify == 0 {
				if got != nil {
					t.Fatalf("key exists: %+v", *got)
				}
				return
			}
			if got == nil {
				t.Fatal("key missing")
			}
			want := api.KVPair{Key: "lk", CreateIndex: 13, ModifyIndex: st.wantModify, LockIndex: st.wantLockIdx,
				Flags: 3, Value: []byte(st.wantValue), Session: st.wantSession}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("entry:\n got  %+v\n want %+v", *got, want)
			}
		})
		if !ok {
			t.FailNow() // later steps depend on this one
		}
	}
}

func TestKVLockExistingUnlockedKey(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1"})
	mustKVSet(t, s, 5, "k", "plain")
	mustLock(t, s, 6, "k", "locked", "s1")
	_, e := mustGet(t, s, "k")
	want := api.KVPair{Key: "k", CreateIndex: 5, ModifyIndex: 6, LockIndex: 1, Session: "s1", Value: []byte("locked")}
	if !reflect.DeepEqual(*e, want) {
		t.Errorf("got %+v, want %+v", *e, want)
	}
}

func TestKVLockDestroyedSession(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1"})
	if err := s.SessionDestroy(2, "s1"); err != nil {
		t.Fatal(err)
	}
	ok, err := s.KVLock(3, &api.KVPair{Key: "k"}, "s1")
	if !errors.Is(err, ErrNotFound) || ok {
		t.Fatalf("KVLock with destroyed session = %v, %v; want false, ErrNotFound", ok, err)
	}
	if _, e := mustGet(t, s, "k"); e != nil {
		t.Errorf("failed lock created the key: %+v", *e)
	}
}

func TestKVKeys(t *testing.T) {
	entries := func(keys ...string) []*api.KVPair {
		out := make([]*api.KVPair, 0, len(keys))
		for _, k := range keys {
			out = append(out, &api.KVPair{Key: k})
		}
		return out
	}
	tests := []struct {
		name   string
		keys   []string
		prefix string
		sep    string
		want   []string
	}{
		{name: "no separator lists every key", keys: []string{"a/b", "a/b/c", "a/d"}, prefix: "a/", sep: "", want: []string{"a/b", "a/b/c", "a/d"}},
		{name: "folds sub-trees", keys: []string{"a/b", "a/b/c", "a/b/d", "a/e", "a/f/g"}, prefix: "a/", sep: "/", want: []string{"a/b", "a/b/", "a/e", "a/f/"}},
		{name: "prefix itself is kept", keys: []string{"a/", "a/x"}, prefix: "a/", sep: "/", want: []string{"a/", "a/x"}},
		{name: "separator in prefix is not folded", keys: []string{"a/b/c", "a/b/d"}, prefix: "a/b/", sep: "/", want: []string{"a/b/c", "a/b/d"}},
		{name: "empty prefix folds top level", keys: []string{"a/1", "a/2", "b", "c/1/2"}, prefix: "", sep: "/", want: []string{"a/", "b", "c/"}},
		{name: "prefix without trailing separator", keys: []string{"ab", "ab/c", "abc/d"}, prefix: "ab", sep: "/", want: []string{"ab", "ab/", "abc/"}},
		{name: "multi-byte separator", keys: []string{"a::b::c", "a::b::d", "a::e"}, prefix: "a::", sep: "::", want: []string{"a::b::", "a::e"}},
		{name: "folds at the first separator only", keys: []string{"x/y/z/w"}, prefix: "", sep: "/", want: []string{"x/"}},
		{name: "no entries", keys: nil, prefix: "a/", sep: "/", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := KVKeys(entries(tc.keys...), tc.prefix, tc.sep)
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("KVKeys(%q, %q, %q) = %#v, want %#v", tc.keys, tc.prefix, tc.sep, got, tc.want)
			}
		})
	}
}

// KVKeys over a real listing: folding must also hold on store order.
func TestKVKeysFromList(t *testing.T) {
	s := New()
	for i, k := range []string{"svc/web/1", "svc/web/2", "svc/db", "svc/db/primary", "svc/web-2/x", "other"} {
		mustKVSet(t, s, uint64(i+1), k, "")
	}
	_, out := mustList(t, s, "svc/")
	got := KVKeys(out, "svc/", "/")
	want := []string{"svc/db", "svc/db/", "svc/web-2/", "svc/web/"}
	if !slices.Equal(got, want) {
		t.Errorf("KVKeys = %q, want %q", got, want)
	}
}

func TestTombstoneReaping(t *testing.T) {
	const R = tombstoneRetain
	tests := []struct {
		name string
		// deleteAt is the index of the delete that triggers reaping
		// (of key "trigger", written just before).
		deleteAt uint64
		// tombstones a/2@20 and b/1@21 exist; wantReaped and wantBReaped
		// say whether each is gone after the trigger.
		wantReaped, wantBReaped bool
	}{
		{name: "below the retain window nothing is reaped", deleteAt: R},
		{name: "tombstone exactly at the window edge is kept", deleteAt: R + 20},
		{name: "tombstone one past the window edge is reaped", deleteAt: R + 21, wantReaped: true},
		{name: "far beyond the window", deleteAt: 10 * R, wantReaped: true, wantBReaped: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustKVSet(t, s, 5, "a/1", "v")
			mustKVSet(t, s, 10, "a/2", "v")
			mustKVSet(t, s, 11, "b/1", "v")
			mustKVDelete(t, s, 20, "a/2")
			mustKVDelete(t, s, 21, "b/1")
			if idx, _ := mustList(t, s, "a/"); idx != 20 {
				t.Fatalf("KVList(a/) index before reaping = %d, want 20 (tombstone)", idx)
			}
			mustKVSet(t, s, tc.deleteAt-1, "trigger", "v")
			mustKVDelete(t, s, tc.deleteAt, "trigger")

			tombs := tombstoneIndexes(t, s)
			if _, ok := tombs["trigger"]; !ok {
				t.Errorf("the triggering delete's own tombstone was reaped")
			}
			_, present := tombs["a/2"]
			if present == tc.wantReaped {
				t.Errorf("tombstone a/2@20 present = %v, want %v (tombstones: %v)", present, !tc.wantReaped, tombs)
			}
			if _, present := tombs["b/1"]; present == tc.wantBReaped {
				t.Errorf("tombstone b/1@21 present = %v, want %v (tombstones: %v)", present, !tc.wantBReaped, tombs)
			}
			// Once a/2's tombstone is gone the listing does not fall back
			// to its newest live key (5): the highest reaped index is a
			// floor, so the index a client holds (20) is never reused.
			wantA := uint64(20)
			if tc.wantBReaped {
				wantA = 21
			}
			if idx, _ := mustList(t, s, "a/"); idx != wantA {
				t.Errorf("KVList(a/) index = %d, want %d", idx, wantA)
			}
			// A prefix left with nothing falls back to the table index.
			wantB := uint64(21)
			if tc.wantBReaped {
				wantB = tc.deleteAt
			}
			if idx, _ := mustList(t, s, "b/"); idx != wantB {
				t.Errorf("KVList(b/) index = %d, want %d", idx, wantB)
			}
		})
	}
}

func TestTombstoneReapingBySessionDelete(t *testing.T) {
	s := New()
	mustKVSet(t, s, 5, "old", "v")
	mustKVDelete(t, s, 6, "old")
	mustSession(t, s, 7, &api.SessionEntry{ID: "s1", Behavior: api.SessionBehaviorDelete})
	mustLock(t, s, 8, "held", "v", "s1")
	if err := s.SessionDestroy(tombstoneRetain+100, "s1"); err != nil {
		t.Fatal(err)
	}
	tombs := tombstoneIndexes(t, s)
	want := map[string]uint64{"held": tombstoneRetain + 100}
	if !reflect.DeepEqual(tombs, want) {
		t.Errorf("tombstones = %v, want %v", tombs, want)
	}
}

// The comment on tombstoneRetain promises that reaping "makes a blocking
// client start over, never miss a change". A client that listed a/ when
// its newest key was a/1@5 holds index 5; a/2 (older, @3) is then deleted
// at 6 and that tombstone is reaped. The listing now reports index 5
// again, with different content, so the client's ?index=5 query blocks
// instead of returning the deletion.
func TestTombstoneReapingNeverReturnsAnIndexAlreadySeen(t *testing.T) {
	s := New()
	mustKVSet(t, s, 3, "a/2", "v")
	mustKVSet(t, s, 5, "a/1", "v")
	seen, before := mustList(t, s, "a/")
	if seen != 5 || len(before) != 2 {
		t.Fatalf("setup: index %d keys %q", seen, keysOf(before))
	}
	mustKVDelete(t, s, 6, "a/2")
	mustKVSet(t, s, 7, "zz", "v")
	mustKVDelete(t, s, 7+tombstoneRetain, "zz")
	idx, after := mustList(t, s, "a/")
	if idx == seen && !slices.Equal(keysOf(after), keysOf(before)) {
		t.Errorf("KVList(a/) reports index %d again but its keys went from %q to %q: a client blocking on %d misses the delete",
			idx, keysOf(before), keysOf(after), seen)
	}
}

func TestLockDelayUntilExpires(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1", LockDelay: 300 * time.Millisecond})
	mustLock(t, s, 2, "k", "v", "s1")
	if err := s.SessionDestroy(3, "s1"); err != nil {
		t.Fatal(err)
	}
	if u := s.LockDelayUntil("k"); !u.After(time.Now()) {
		t.Fatalf("LockDelayUntil right after destroy = %v, want in the future", u)
	}
	time.Sleep(400 * time.Millisecond)
	if u := s.LockDelayUntil("k"); !u.IsZero() {
		t.Errorf("LockDelayUntil after expiry = %v, want zero", u)
	}
}

func ExampleKVKeys() {
	entries := []*api.KVPair{{Key: "app/a"}, {Key: "app/b/c"}, {Key: "app/b/d"}}
	fmt.Println(KVKeys(entries, "app/", "/"))
	// Output: [app/a app/b/]
}
