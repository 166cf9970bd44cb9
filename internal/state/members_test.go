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

func TestMemberUpsert(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	base := api.Member{Name: "n1", Addr: "10.0.0.1:7946", Status: api.MemberAlive, Role: "server",
		APIAddr: "10.0.0.1:8500", Version: "1.0", StatusSince: t0}
	with := func(f func(m *api.Member)) api.Member {
		m := base
		f(&m)
		return m
	}
	tests := []struct {
		name string
		// prev is upserted at 10 (nil: the member is new).
		prev *api.Member
		in   api.Member
		want api.Member
	}{
		{
			name: "new member takes its StatusSince and the index",
			in:   with(func(m *api.Member) { m.ModifyIndex = 3 }),
			want: with(func(m *api.Member) { m.ModifyIndex = 20 }),
		},
		{
			name: "unchanged status keeps the old StatusSince",
			prev: &base,
			in:   with(func(m *api.Member) { m.StatusSince = t1; m.Version = "1.1" }),
			want: with(func(m *api.Member) { m.ModifyIndex = 20; m.Version = "1.1" }),
		},
		{
			name: "unchanged status with zero StatusSince keeps the old one",
			prev: &base,
			in:   with(func(m *api.Member) { m.StatusSince = time.Time{} }),
			want: with(func(m *api.Member) { m.ModifyIndex = 20 }),
		},
		{
			name: "changed status takes the new StatusSince",
			prev: &base,
			in:   with(func(m *api.Member) { m.Status = api.MemberFailed; m.StatusSince = t1 }),
			want: with(func(m *api.Member) { m.Status = api.MemberFailed; m.StatusSince = t1; m.ModifyIndex = 20 }),
		},
		{
			name: "unchanged status when the old StatusSince was zero takes the new one",
			prev: func() *api.Member { m := with(func(m *api.Member) { m.StatusSince = time.Time{} }); return &m }(),
			in:   with(func(m *api.Member) { m.StatusSince = t1 }),
			want: with(func(m *api.Member) { m.StatusSince = t1; m.ModifyIndex = 20 }),
		},
		{
			name: "other fields are replaced",
			prev: &base,
			in: with(func(m *api.Member) {
				m.Addr, m.APIAddr, m.RPCAddr, m.Zone, m.Labels = "10.0.0.2:7946", "10.0.0.2:8500", "10.0.0.2:8300", "z1", map[string]string{"a": "b"}
			}),
			want: with(func(m *api.Member) {
				m.Addr, m.APIAddr, m.RPCAddr, m.Zone, m.Labels = "10.0.0.2:7946", "10.0.0.2:8500", "10.0.0.2:8300", "z1", map[string]string{"a": "b"}
				m.ModifyIndex = 20
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if tc.prev != nil {
				p := *tc.prev
				if err := s.MemberUpsert(10, &p); err != nil {
					t.Fatal(err)
				}
			}
			in := tc.in
			arg := in
			if err := s.MemberUpsert(20, &arg); err != nil {
				t.Fatalf("MemberUpsert: %v", err)
			}
			if !reflect.DeepEqual(arg, in) {
				t.Errorf("MemberUpsert modified its argument: %+v", arg)
			}
			got, err := s.Member(tc.in.Name)
			if err != nil || got == nil {
				t.Fatalf("Member = %v, %v", got, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("stored member:\n got  %+v\n want %+v", *got, tc.want)
			}
			if idx, _, _ := s.Members(nil); idx != 20 {
				t.Errorf("Members index = %d, want 20", idx)
			}
		})
	}
}

func TestMembersSortedAndDelete(t *testing.T) {
	s := New()
	for i, name := range []string{"node-b", "node-a", "node-c", "node-a2"} {
		if err := s.MemberUpsert(uint64(i+1), &api.Member{Name: name, Status: api.MemberAlive}); err != nil {
			t.Fatal(err)
		}
	}
	names := func() (uint64, []string) {
		t.Helper()
		idx, ms, err := s.Members(nil)
		if err != nil {
			t.Fatal(err)
		}
		if ms == nil {
			t.Errorf("Members returned nil, want an empty slice")
		}
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return idx, out
	}
	steps := []struct {
		name      string
		do        func() error
		wantIdx   uint64
		wantNames []string
	}{
		{name: "sorted by name", do: func() error { return nil }, wantIdx: 4, wantNames: []string{"node-a", "node-a2", "node-b", "node-c"}},
		{name: "delete one", do: func() error { return s.MemberDelete(10, "node-a") }, wantIdx: 10, wantNames: []string{"node-a2", "node-b", "node-c"}},
		{name: "delete missing is a no-op", do: func() error { return s.MemberDelete(11, "node-a") }, wantIdx: 10, wantNames: []string{"node-a2", "node-b", "node-c"}},
		{name: "delete the rest", do: func() error {
			for _, n := range []string{"node-a2", "node-b", "node-c"} {
				if err := s.MemberDelete(12, n); err != nil {
					return err
				}
			}
			return nil
		}, wantIdx: 12, wantNames: []string{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			idx, got := names()
			if idx != st.wantIdx || !slices.Equal(got, st.wantNames) {
				t.Errorf("Members = %d, %q; want %d, %q", idx, got, st.wantIdx, st.wantNames)
			}
		})
	}
	if m, err := s.Member("node-a"); err != nil || m != nil {
		t.Errorf("Member(deleted) = %v, %v; want nil, nil", m, err)
	}
}

func TestMemberDeleteMissingLeavesStoreUnchanged(t *testing.T) {
	s := New()
	if err := s.MemberUpsert(1, &api.Member{Name: "a", Status: api.MemberAlive}); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	if err := s.MemberDelete(2, "b"); err != nil {
		t.Fatal(err)
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Errorf("deleting a missing member changed the store")
	}
}

func TestMembersEmptyStore(t *testing.T) {
	idx, ms, err := New().Members(nil)
	if err != nil || ms == nil || len(ms) != 0 || idx != 1 {
		t.Errorf("Members on empty store = %d, %v, %v; want 1, [], nil", idx, ms, err)
	}
}

func TestMembersWatch(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Store) error
	}{
		{name: "upsert of a new member", change: func(s *Store) error { return s.MemberUpsert(5, &api.Member{Name: "b"}) }},
		{name: "status change", change: func(s *Store) error {
			return s.MemberUpsert(5, &api.Member{Name: "a", Status: api.MemberFailed})
		}},
		{name: "delete", change: func(s *Store) error { return s.MemberDelete(5, "a") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			if err := s.MemberUpsert(1, &api.Member{Name: "a", Status: api.MemberAlive}); err != nil {
				t.Fatal(err)
			}
			ws := memdb.NewWatchSet()
			if _, _, err := s.Members(ws); err != nil {
				t.Fatal(err)
			}
			if err := tc.change(s); err != nil {
				t.Fatal(err)
			}
			assertFires(t, ws, tc.name)
		})
	}
}
