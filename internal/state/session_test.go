package state

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

func TestSessionCreate(t *testing.T) {
	tests := []struct {
		name string
		in   api.SessionEntry
		want api.SessionEntry
	}{
		{
			name: "empty behaviour defaults to release",
			in:   api.SessionEntry{ID: "s1", Node: "n1", Name: "web"},
			want: api.SessionEntry{ID: "s1", Node: "n1", Name: "web", Behavior: api.SessionBehaviorRelease, CreateIndex: 7, ModifyIndex: 7},
		},
		{
			name: "explicit delete is kept",
			in:   api.SessionEntry{ID: "s1", Behavior: api.SessionBehaviorDelete},
			want: api.SessionEntry{ID: "s1", Behavior: api.SessionBehaviorDelete, CreateIndex: 7, ModifyIndex: 7},
		},
		{
			name: "caller's indexes are replaced, other fields echoed",
			in: api.SessionEntry{ID: "s1", CreateIndex: 1, ModifyIndex: 2, LockDelay: 15 * time.Second, TTL: "10s",
				Checks: []string{"serfHealth"}, Namespace: "default"},
			want: api.SessionEntry{ID: "s1", CreateIndex: 7, ModifyIndex: 7, LockDelay: 15 * time.Second, TTL: "10s",
				Checks: []string{"serfHealth"}, Namespace: "default", Behavior: api.SessionBehaviorRelease},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			in := tc.in
			arg := in
			if err := s.SessionCreate(7, &arg); err != nil {
				t.Fatalf("SessionCreate: %v", err)
			}
			if !reflect.DeepEqual(arg, in) {
				t.Errorf("SessionCreate modified its argument: %+v", arg)
			}
			idx, got, err := s.SessionGet(nil, tc.in.ID)
			if err != nil || got == nil {
				t.Fatalf("SessionGet = %v, %v", got, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("stored session:\n got  %+v\n want %+v", *got, tc.want)
			}
			if idx != 7 || s.LatestIndex() != 7 {
				t.Errorf("SessionGet index = %d, LatestIndex = %d, want 7", idx, s.LatestIndex())
			}
		})
	}
}

func TestSessionCreateErrors(t *testing.T) {
	tests := []struct {
		name string
		in   api.SessionEntry
	}{
		{name: "duplicate ID", in: api.SessionEntry{ID: "s1", Node: "other", Behavior: api.SessionBehaviorDelete}},
		{name: "empty ID", in: api.SessionEntry{ID: ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustSession(t, s, 5, &api.SessionEntry{ID: "s1", Node: "n1"})
			before := snapshotBytes(t, s)
			in := tc.in
			if err := s.SessionCreate(9, &in); err == nil {
				t.Fatalf("SessionCreate(%q) succeeded, want an error", tc.in.ID)
			}
			if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
				t.Errorf("failed SessionCreate changed the store:\n before %s\n after  %s", before, after)
			}
		})
	}
}

func TestSessionGetMissing(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store)
		wantIdx uint64
	}{
		{name: "empty store", wantIdx: 1},
		{name: "sessions table index", setup: func(t *testing.T, s *Store) {
			mustSession(t, s, 4, &api.SessionEntry{ID: "s1"})
			mustKVSet(t, s, 9, "k", "v")
		}, wantIdx: 4},
		{name: "after a destroy", setup: func(t *testing.T, s *Store) {
			mustSession(t, s, 4, &api.SessionEntry{ID: "gone"})
			if err := s.SessionDestroy(6, "gone"); err != nil {
				t.Fatal(err)
			}
		}, wantIdx: 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			idx, se, err := s.SessionGet(nil, "gone")
			if err != nil || se != nil {
				t.Fatalf("SessionGet(missing) = %v, %v; want nil, nil", se, err)
			}
			if idx != tc.wantIdx {
				t.Errorf("index = %d, want %d", idx, tc.wantIdx)
			}
		})
	}
}

func TestSessionList(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "c", Node: "n1"})
	mustSession(t, s, 2, &api.SessionEntry{ID: "a", Node: "n2"})
	mustSession(t, s, 3, &api.SessionEntry{ID: "b", Node: "n1"})
	mustSession(t, s, 4, &api.SessionEntry{ID: "d", Node: ""})
	mustSession(t, s, 5, &api.SessionEntry{ID: "e", Node: "n10"})
	mustKVSet(t, s, 6, "k", "v")
	tests := []struct {
		name string
		node string
		want []string
	}{
		{name: "all sessions by ID", node: "", want: []string{"a", "b", "c", "d", "e"}},
		{name: "one node", node: "n1", want: []string{"b", "c"}},
		{name: "node is matched exactly, not by prefix", node: "n10", want: []string{"e"}},
		{name: "other node", node: "n2", want: []string{"a"}},
		{name: "unknown node", node: "nope", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			idx, out, err := s.SessionList(nil, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if out == nil {
				t.Errorf("SessionList returned nil, want an empty slice (JSON [] not null)")
			}
			got := []string{}
			for _, se := range out {
				got = append(got, se.ID)
				if tc.node != "" && se.Node != tc.node {
					t.Errorf("session %q has node %q, want %q", se.ID, se.Node, tc.node)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("SessionList(%q) = %q, want %q", tc.node, got, tc.want)
			}
			if idx != 5 {
				t.Errorf("index = %d, want sessions table index 5", idx)
			}
		})
	}
	t.Run("empty store", func(t *testing.T) {
		idx, out, err := New().SessionList(nil, "")
		if err != nil || out == nil || len(out) != 0 || idx != 1 {
			t.Errorf("SessionList on empty store = %d, %v, %v; want 1, [], nil", idx, out, err)
		}
	})
}

func TestSessionDestroy(t *testing.T) {
	const delay = 10 * time.Second
	tests := []struct {
		name      string
		behavior  string
		lockDelay time.Duration
	}{
		{name: "release without lock delay", behavior: api.SessionBehaviorRelease},
		{name: "release with lock delay", behavior: api.SessionBehaviorRelease, lockDelay: delay},
		{name: "default behaviour is release", behavior: "", lockDelay: delay},
		{name: "delete without lock delay", behavior: api.SessionBehaviorDelete},
		{name: "delete with lock delay", behavior: api.SessionBehaviorDelete, lockDelay: delay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1", Behavior: tc.behavior, LockDelay: tc.lockDelay})
			mustSession(t, s, 2, &api.SessionEntry{ID: "s2", Node: "n1", LockDelay: delay})
			mustKVSet(t, s, 3, "held/1", "v")
			mustLock(t, s, 4, "held/1", "h1", "s1")
			mustLock(t, s, 5, "held/2", "h2", "s1")
			mustLock(t, s, 6, "other", "o", "s2")
			mustKVSet(t, s, 7, "free", "f")
			ws := memdb.NewWatchSet()
			if _, _, err := s.KVGet(ws, "held/1"); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if err := s.SessionDestroy(50, "s1"); err != nil {
				t.Fatalf("SessionDestroy: %v", err)
			}
			assertFires(t, ws, "KVGet watch on a held key")

			if _, se, _ := s.SessionGet(nil, "s1"); se != nil {
				t.Errorf("session still exists: %+v", *se)
			}
			if _, se, _ := s.SessionGet(nil, "s2"); se == nil {
				t.Errorf("unrelated session s2 was destroyed")
			}
			deletes := tc.behavior == api.SessionBehaviorDelete
			for _, k := range []struct {
				key, value string
				create     uint64
			}{{"held/1", "h1", 3}, {"held/2", "h2", 5}} {
				_, e := mustGet(t, s, k.key)
				if deletes {
					if e != nil {
						t.Errorf("%s: key survives a delete-behaviour session: %+v", k.key, *e)
					}
					if ti := tombstoneIndexes(t, s)[k.key]; ti != 50 {
						t.Errorf("%s: tombstone index = %d, want 50", k.key, ti)
					}
					continue
				}
				want := api.KVPair{Key: k.key, CreateIndex: k.create, ModifyIndex: 50, LockIndex: 1, Value: []byte(k.value)}
				if e == nil || !reflect.DeepEqual(*e, want) {
					t.Errorf("%s after release:\n got  %+v\n want %+v", k.key, e, want)
				}
			}
			_, other := mustGet(t, s, "other")
			if other == nil || other.Session != "s2" || other.ModifyIndex != 6 {
				t.Errorf("key held by another session changed: %+v", other)
			}
			_, free := mustGet(t, s, "free")
			if free == nil || free.ModifyIndex != 7 {
				t.Errorf("unlocked key changed: %+v", free)
			}

			for _, k := range []string{"held/1", "held/2"} {
				until := s.LockDelayUntil(k)
				if tc.lockDelay == 0 {
					if !until.IsZero() {
						t.Errorf("LockDelayUntil(%s) = %v, want zero (session had no lock delay)", k, until)
					}
					continue
				}
				if !until.After(time.Now()) || until.Before(start.Add(tc.lockDelay)) || until.After(time.Now().Add(tc.lockDelay)) {
					t.Errorf("LockDelayUntil(%s) = %v, want about now+%v", k, until, tc.lockDelay)
				}
			}
			for _, k := range []string{"other", "free", "never"} {
				if until := s.LockDelayUntil(k); !until.IsZero() {
					t.Errorf("LockDelayUntil(%s) = %v, want zero", k, until)
				}
			}
			if idx, _, _ := s.SessionList(nil, ""); idx != 50 {
				t.Errorf("sessions index = %d, want 50", idx)
			}
			if li := s.LatestIndex(); li != 50 {
				t.Errorf("LatestIndex = %d, want 50", li)
			}
		})
	}
}

func TestSessionDestroyMissing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
	}{
		{name: "empty store"},
		{name: "other sessions exist", setup: func(t *testing.T, s *Store) {
			mustSession(t, s, 1, &api.SessionEntry{ID: "s1"})
			mustLock(t, s, 2, "k", "v", "s1")
		}},
		{name: "already destroyed", setup: func(t *testing.T, s *Store) {
			mustSession(t, s, 1, &api.SessionEntry{ID: "gone"})
			if err := s.SessionDestroy(2, "gone"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.setup != nil {
				tc.setup(t, s)
			}
			before := snapshotBytes(t, s)
			if err := s.SessionDestroy(10, "gone"); err != nil {
				t.Fatalf("SessionDestroy(missing) = %v, want nil", err)
			}
			if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
				t.Errorf("destroying a missing session changed the store:\n before %s\n after  %s", before, after)
			}
		})
	}
}

func TestSessionWatches(t *testing.T) {
	tests := []struct {
		name   string
		read   func(s *Store, ws memdb.WatchSet) error
		change func(t *testing.T, s *Store)
	}{
		{
			name: "SessionGet fires on destroy",
			read: func(s *Store, ws memdb.WatchSet) error { _, _, err := s.SessionGet(ws, "s1"); return err },
			change: func(t *testing.T, s *Store) {
				if err := s.SessionDestroy(5, "s1"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "SessionGet of a missing session fires on create",
			read:   func(s *Store, ws memdb.WatchSet) error { _, _, err := s.SessionGet(ws, "s9"); return err },
			change: func(t *testing.T, s *Store) { mustSession(t, s, 5, &api.SessionEntry{ID: "s9"}) },
		},
		{
			name:   "SessionList fires on create",
			read:   func(s *Store, ws memdb.WatchSet) error { _, _, err := s.SessionList(ws, ""); return err },
			change: func(t *testing.T, s *Store) { mustSession(t, s, 5, &api.SessionEntry{ID: "s2", Node: "n1"}) },
		},
		{
			name: "SessionList by node fires on destroy",
			read: func(s *Store, ws memdb.WatchSet) error { _, _, err := s.SessionList(ws, "n1"); return err },
			change: func(t *testing.T, s *Store) {
				if err := s.SessionDestroy(5, "s1"); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			mustSession(t, s, 1, &api.SessionEntry{ID: "s1", Node: "n1"})
			ws := memdb.NewWatchSet()
			if err := tc.read(s, ws); err != nil {
				t.Fatal(err)
			}
			tc.change(t, s)
			assertFires(t, ws, tc.name)
		})
	}
}

// Replaying an old session invalidation (after a restart) must not re-arm
// a lock delay that already ran out.
func TestSessionDestroyAtPastTimeArmsNoLockDelay(t *testing.T) {
	s := New()
	mustSession(t, s, 1, &api.SessionEntry{ID: "s1", LockDelay: 10 * time.Second})
	mustLock(t, s, 2, "k", "v", "s1")
	if err := s.SessionDestroyAt(3, "s1", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if u := s.LockDelayUntil("k"); !u.IsZero() {
		t.Fatalf("LockDelayUntil after replaying a minute-old invalidation = %v, want zero", u)
	}
	mustSession(t, s, 4, &api.SessionEntry{ID: "s2", LockDelay: 10 * time.Second})
	mustLock(t, s, 5, "k2", "v", "s2")
	at := time.Now().Add(-2 * time.Second)
	if err := s.SessionDestroyAt(6, "s2", at); err != nil {
		t.Fatal(err)
	}
	if u := s.LockDelayUntil("k2"); !u.Equal(at.Add(10 * time.Second)) {
		t.Fatalf("LockDelayUntil = %v, want %v (invalidation time + delay)", u, at.Add(10*time.Second))
	}
}
