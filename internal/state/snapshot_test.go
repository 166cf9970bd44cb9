package state

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
)

// fillStore writes one of everything the store holds: plain, flagged,
// binary, empty and locked keys, tombstones, sessions of both behaviours,
// members and the cluster ID. It returns the last index used.
func fillStore(t testing.TB, s *Store) uint64 {
	t.Helper()
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetClusterID(1, "cluster-1234"))
	must(s.MemberUpsert(2, &api.Member{Name: "n1", Addr: "10.0.0.1:7946", Status: api.MemberAlive, Role: "server",
		Zone: "z1", Labels: map[string]string{"rack": "r1", "ssd": ""}, APIAddr: "10.0.0.1:8500", RPCAddr: "10.0.0.1:8300",
		Version: "1.2.3", StatusSince: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)}))
	must(s.MemberUpsert(3, &api.Member{Name: "n2", Addr: "10.0.0.2:7946", Status: api.MemberFailed, Role: "client",
		APIAddr: "10.0.0.2:8500", Version: "1.2.3"}))
	must(s.SessionCreate(4, &api.SessionEntry{ID: "s-release", Name: "web", Node: "n1", LockDelay: 15 * time.Second,
		TTL: "30s", Checks: []string{"serfHealth"}, ServiceChecks: []api.ServiceCheck{{ID: "svc", Namespace: "ns"}}}))
	must(s.SessionCreate(5, &api.SessionEntry{ID: "s-delete", Node: "n2", Behavior: api.SessionBehaviorDelete, Namespace: "default"}))
	must(s.KVSet(6, &api.KVPair{Key: "plain", Value: []byte("hello")}))
	must(s.KVSet(7, &api.KVPair{Key: "flags", Flags: 1<<64 - 1, Value: []byte("x")}))
	must(s.KVSet(8, &api.KVPair{Key: "binary", Value: allBytes}))
	must(s.KVSet(9, &api.KVPair{Key: "empty", Value: []byte{}}))
	must(s.KVSet(10, &api.KVPair{Key: "nil"}))
	must(s.KVSet(11, &api.KVPair{Key: "ünïcødé/キー/\"quoted\"\\", Value: []byte("u")}))
	must(s.KVSet(12, &api.KVPair{Key: "locks/a", Value: []byte("a")}))
	if ok, err := s.KVLock(13, &api.KVPair{Key: "locks/a", Flags: 4, Value: []byte("held")}, "s-release"); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if ok, err := s.KVUnlock(14, &api.KVPair{Key: "locks/a", Flags: 4, Value: []byte("free")}, "s-release"); err != nil || !ok {
		t.Fatalf("unlock: %v %v", ok, err)
	}
	if ok, err := s.KVLock(15, &api.KVPair{Key: "locks/a", Value: []byte("held again")}, "s-delete"); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if ok, err := s.KVLock(16, &api.KVPair{Key: "locks/b", Value: []byte("b")}, "s-release"); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	must(s.KVSet(17, &api.KVPair{Key: "gone/1", Value: []byte("1")}))
	must(s.KVSet(18, &api.KVPair{Key: "gone/2", Value: []byte("2")}))
	must(s.KVDelete(19, "gone/2"))
	must(s.KVDelete(20, "gone/1"))
	must(s.KVSet(21, &api.KVPair{Key: "dir/x", Value: []byte("x")}))
	must(s.KVSet(22, &api.KVPair{Key: "dir/y", Value: []byte("y")}))
	must(s.KVDelete(23, "dir/y"))
	must(s.MemberUpsert(24, &api.Member{Name: "n2", Addr: "10.0.0.2:7946", Status: api.MemberLeft, Role: "client",
		APIAddr: "10.0.0.2:8500", Version: "1.2.4", StatusSince: time.Date(2024, 5, 7, 0, 0, 0, 0, time.UTC)}))
	must(s.ServiceUpsert(25, &api.Service{Name: "web", Algorithm: "least_request", SlowStart: api.Duration(30 * time.Second),
		Routes:      []api.Route{{Host: "*.example.com", PathPrefix: "/api"}},
		Backends:    []api.Backend{{Address: "10.0.0.1:80", Weight: 3, Zone: "z1", Labels: map[string]string{"v": "2"}}, {Address: "10.0.0.2:80"}},
		HealthCheck: &api.HealthCheck{Path: "/healthz", ExpectStatus: []int{200, 299}, Interval: api.Duration(time.Second)},
		Retry:       &api.Retry{Attempts: 2, On: []string{"5xx"}}}))
	must(s.ServiceUpsert(26, &api.Service{Name: "db", Protocol: "tcp", Routes: []api.Route{{Port: 5432}}}))
	must(s.ServiceSetDrain(27, "web", "10.0.0.2:80", true))
	must(s.NodeRegister(28, &api.Node{Name: "n1", Zone: "z1", Labels: map[string]string{"disk": "ssd"}, Address: "10.0.0.1",
		Drivers: map[string]string{"exec": "", "docker": "no engine"}, Resources: api.NodeResources{CPU: 2000, MemoryMB: 4096, PortMin: 20000, PortMax: 29999}}))
	code := 3
	must(s.ReplicaApplyPlan(29, &ReplicaPlan{Upsert: []*api.Replica{{ID: "app-0001", Service: "app", Version: 26, Node: "n1",
		Address: "10.0.0.1", Ports: map[string]int{"http": 20000}, Desired: api.DesiredRun, State: api.ReplicaBackoff,
		Health: api.HealthUnknown, Restarts: 4, ExitCode: &code, Resources: api.Resources{CPU: 100, MemoryMB: 64},
		StartedAt: time.Date(2024, 5, 7, 1, 0, 0, 0, time.UTC)}}}))
	must(s.PKIInit(30, &PKI{CACert: "-----BEGIN CERTIFICATE-----\n...", CAHash: "sha256:00", CAKey: []byte{1, 2, 3}, Keyring: []byte{4, 5}}))
	must(s.JoinTokenCreate(31, &JoinTokenEntry{JoinToken: api.JoinToken{ID: "0123456789abcdef", Role: "client",
		ExpiresAt: time.Date(2024, 5, 8, 0, 0, 0, 0, time.UTC), CreateTime: time.Date(2024, 5, 7, 0, 0, 0, 0, time.UTC)}, SecretHash: "ab"}))
	must(s.ACLPolicySet(32, &api.ACLPolicy{Name: "kv-read", Rules: []api.ACLRule{{Resource: "kv", Prefix: "app/", Access: "read"}}}))
	must(s.ACLBootstrap(33, &ACLTokenEntry{ACLToken: api.ACLToken{AccessorID: "fedcba9876543210", Management: true,
		CreateTime: time.Date(2024, 5, 7, 0, 0, 0, 0, time.UTC)}, SecretHash: "cd"}))
	must(s.VIPUpsert(34, &api.VIP{Name: "front", Address: "10.0.0.100/24", Nodes: []string{"n1", "n2"}, Priority: map[string]int{"n1": 150}, Lease: api.Duration(time.Second)}))
	must(s.VIPSetHolder(35, "front", "n1", "claimed"))
	return 35
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := New()
	last := fillStore(t, src)
	var buf bytes.Buffer
	n, err := src.Snapshot().WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	written := bytes.Clone(buf.Bytes())

	dst := New()
	// The target is not empty: Restore must replace, not merge.
	mustKVSet(t, dst, 99, "stale", "must disappear")
	mustSession(t, dst, 100, &api.SessionEntry{ID: "stale-session"})
	if err := dst.SetClusterID(101, "other-cluster"); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(&buf); err != nil {
		t.Fatalf("Restore: %v", err)
	}

	want, got := dumpTables(t, src), dumpTables(t, dst)
	for _, table := range snapshotTables {
		t.Run("table "+table, func(t *testing.T) {
			if len(want[table]) == 0 {
				t.Fatalf("fixture wrote nothing to %s", table)
			}
			if !reflect.DeepEqual(got[table], want[table]) {
				t.Errorf("%s differs after restore:\n got  %s\n want %s", table, dumpString(got[table]), dumpString(want[table]))
			}
		})
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{name: "LatestIndex", got: dst.LatestIndex(), want: last},
		{name: "ClusterID", got: dst.ClusterID(), want: "cluster-1234"},
		{name: "re-snapshot bytes", got: string(snapshotBytes(t, dst)), want: string(written)},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		})
	}
	// Reads give the same answers, indexes included.
	reads := []struct {
		name string
		read func(s *Store) (uint64, any)
	}{
		{name: "KVList(gone/) tombstone index", read: func(s *Store) (uint64, any) { i, o := mustList(t, s, "gone/"); return i, keysOf(o) }},
		{name: "KVList(dir/)", read: func(s *Store) (uint64, any) { i, o := mustList(t, s, "dir/"); return i, keysOf(o) }},
		{name: "KVList all", read: func(s *Store) (uint64, any) { i, o := mustList(t, s, ""); return i, o }},
		{name: "KVGet binary", read: func(s *Store) (uint64, any) { return mustGet(t, s, "binary") }},
		{name: "KVGet missing", read: func(s *Store) (uint64, any) { return mustGet(t, s, "missing") }},
		{name: "SessionList n1", read: func(s *Store) (uint64, any) { i, o, _ := s.SessionList(nil, "n1"); return i, o }},
		{name: "Members", read: func(s *Store) (uint64, any) { i, o, _ := s.Members(nil); return i, o }},
		{name: "ServiceList", read: func(s *Store) (uint64, any) { i, o, _ := s.ServiceList(nil); return i, o }},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			wi, wv := r.read(src)
			gi, gv := r.read(dst)
			if wi != gi || !reflect.DeepEqual(gv, wv) {
				t.Errorf("after restore: %d %s; before: %d %s", gi, dumpString(gv), wi, dumpString(wv))
			}
		})
	}
	// The restored store is fully functional: locks and sessions work.
	t.Run("restored sessions still hold their locks", func(t *testing.T) {
		if ok, err := dst.KVLock(last+1, &api.KVPair{Key: "locks/b"}, "s-delete"); err != nil || ok {
			t.Errorf("lock on a key held by s-release = %v, %v; want false", ok, err)
		}
		if err := dst.SessionDestroy(last+2, "s-delete"); err != nil {
			t.Fatal(err)
		}
		if _, e := mustGet(t, dst, "locks/a"); e != nil {
			t.Errorf("locks/a survives destroy of its delete-behaviour session")
		}
	})
}

func dumpString(v any) string {
	var sb strings.Builder
	switch rows := v.(type) {
	case []any:
		for _, r := range rows {
			fmt.Fprintf(&sb, "%+v ", r)
		}
	case []*api.KVPair:
		for _, r := range rows {
			fmt.Fprintf(&sb, "%+v ", *r)
		}
	default:
		fmt.Fprintf(&sb, "%+v", v)
	}
	return sb.String()
}

func TestSnapshotIsPointInTime(t *testing.T) {
	s := New()
	mustKVSet(t, s, 1, "a", "before")
	mustKVSet(t, s, 2, "b", "before")
	snap := s.Snapshot()
	want := dumpTables(t, s)
	mustKVSet(t, s, 3, "a", "after")
	mustKVDelete(t, s, 4, "b")
	mustKVSet(t, s, 5, "c", "after")
	mustSession(t, s, 6, &api.SessionEntry{ID: "after"})

	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	dst := New()
	if err := dst.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if got := dumpTables(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot includes writes made after it was taken:\n got  %v\n want %v", got, want)
	}
	if li := dst.LatestIndex(); li != 2 {
		t.Errorf("LatestIndex = %d, want 2", li)
	}
}

func TestSnapshotEmptyStore(t *testing.T) {
	data := snapshotBytes(t, New())
	dst := New()
	fillStore(t, dst)
	if err := dst.Restore(bytes.NewReader(data)); err != nil {
		t.Fatalf("Restore(empty snapshot): %v", err)
	}
	for table, rows := range dumpTables(t, dst) {
		if len(rows) != 0 {
			t.Errorf("table %s has %d rows after restoring an empty snapshot", table, len(rows))
		}
	}
	if li := dst.LatestIndex(); li != 0 {
		t.Errorf("LatestIndex = %d, want 0", li)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestSnapshotWriteToError(t *testing.T) {
	s := New()
	fillStore(t, s)
	for _, after := range []int{0, 10, 1000} {
		t.Run(fmt.Sprintf("fails after %d bytes", after), func(t *testing.T) {
			n, err := s.Snapshot().WriteTo(&failWriter{after: after})
			if err == nil {
				t.Fatal("WriteTo succeeded on a failing writer")
			}
			if n != int64(after) {
				t.Errorf("WriteTo reported %d bytes, writer accepted %d", n, after)
			}
		})
	}
}

func TestRestoreErrorsLeaveStoreUnchanged(t *testing.T) {
	valid := func() string {
		s := New()
		fillStore(t, s)
		return string(snapshotBytes(t, s))
	}()
	lines := strings.SplitAfter(valid, "\n")
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty input", in: ""},
		{name: "garbage", in: "this is not a snapshot"},
		{name: "binary garbage", in: "\x00\x01\x02\xff\xfe"},
		{name: "header only, garbage after", in: "{\"version\":1}\n!!!"},
		{name: "missing version", in: "{}\n"},
		{name: "null header", in: "null\n"},
		{name: "version 0", in: "{\"version\":0}\n"},
		{name: "version 2", in: "{\"version\":2}\n"},
		{name: "version as string", in: "{\"version\":\"1\"}\n"},
		{name: "future version with valid records", in: strings.Replace(valid, "\"version\":1}", "\"version\":2}", 1)},
		{name: "unknown table", in: "{\"version\":1}\n{\"t\":\"bogus\",\"v\":{}}\n"},
		{name: "unknown table after valid records", in: valid + "{\"t\":\"bogus\",\"v\":{}}\n"},
		{name: "record without table", in: "{\"version\":1}\n{\"v\":{\"Key\":\"k\"}}\n"},
		{name: "record without value", in: "{\"version\":1}\n{\"t\":\"kv\"}\n"},
		{name: "value of wrong type", in: "{\"version\":1}\n{\"t\":\"kv\",\"v\":{\"Key\":\"k\",\"Flags\":\"x\"}}\n"},
		{name: "value not an object", in: "{\"version\":1}\n{\"t\":\"kv\",\"v\":[1,2]}\n"},
		{name: "kv without key", in: "{\"version\":1}\n{\"t\":\"kv\",\"v\":{\"Value\":\"eA==\"}}\n"},
		{name: "null kv value", in: "{\"version\":1}\n{\"t\":\"kv\",\"v\":null}\n"},
		{name: "member without name", in: "{\"version\":1}\n{\"t\":\"members\",\"v\":{\"Status\":\"alive\"}}\n"},
		{name: "bad base64 value", in: "{\"version\":1}\n{\"t\":\"kv\",\"v\":{\"Key\":\"k\",\"Value\":\"!!\"}}\n"},
		{name: "truncated mid-record", in: valid[:len(valid)-len(lines[len(lines)-2])/2-1]},
		{name: "valid then trailing garbage", in: valid + "garbage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			last := fillStore(t, s)
			before := dumpTables(t, s)
			beforeBytes := snapshotBytes(t, s)
			abandon := s.AbandonCh()
			ws := memdb.NewWatchSet()
			if _, _, err := s.KVList(ws, ""); err != nil {
				t.Fatal(err)
			}
			ws.Add(abandon)

			if err := s.Restore(strings.NewReader(tc.in)); err == nil {
				t.Fatalf("Restore(%.60q) succeeded, want an error", tc.in)
			}
			if after := dumpTables(t, s); !reflect.DeepEqual(after, before) {
				t.Errorf("failed Restore changed the store")
			}
			if !bytes.Equal(snapshotBytes(t, s), beforeBytes) {
				t.Errorf("failed Restore changed the snapshot")
			}
			if li := s.LatestIndex(); li != last {
				t.Errorf("LatestIndex = %d, want %d", li, last)
			}
			if s.AbandonCh() != abandon || isClosed(abandon) {
				t.Errorf("failed Restore replaced or closed AbandonCh")
			}
			assertQuiet(t, ws, "watches after a failed restore")
		})
	}
}

func TestRestoreClosesAbandonCh(t *testing.T) {
	src := New()
	fillStore(t, src)
	data := snapshotBytes(t, src)

	s := New()
	mustKVSet(t, s, 1, "k", "v")
	old := s.AbandonCh()
	if isClosed(old) {
		t.Fatal("AbandonCh closed before any restore")
	}
	ws := memdb.NewWatchSet()
	ws.Add(old)
	if _, _, err := s.KVGet(ws, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(old) {
		t.Errorf("Restore did not close the old AbandonCh")
	}
	assertFires(t, ws, "blocking query across a restore")
	cur := s.AbandonCh()
	if cur == old || isClosed(cur) {
		t.Errorf("AbandonCh after restore is the old or a closed channel")
	}
	// A second restore closes the second channel.
	if err := s.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(cur) {
		t.Errorf("second Restore did not close its AbandonCh")
	}
}

// Readers and Restore/writes may run concurrently; run with -race.
func TestConcurrentReadsDuringRestore(t *testing.T) {
	src := New()
	fillStore(t, src)
	data := snapshotBytes(t, src)
	s := New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ws := memdb.NewWatchSet()
				ws.Add(s.AbandonCh())
				if _, _, err := s.KVList(ws, ""); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := s.KVGet(ws, "plain"); err != nil {
					t.Error(err)
					return
				}
				_ = s.LockDelayUntil("locks/b")
				_ = s.LatestIndex()
				var buf bytes.Buffer
				if _, err := s.Snapshot().WriteTo(&buf); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 20 {
		if err := s.Restore(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		mustKVSet(t, s, uint64(100+i), "extra", "v")
		if err := s.SessionDestroy(uint64(100+i), "s-release"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func FuzzRestore(f *testing.F) {
	full := New()
	fillStore(f, full)
	valid := snapshotBytes(f, full)
	small := New()
	mustKVSet(f, small, 1, "k", "v")
	seeds := [][]byte{
		valid,
		snapshotBytes(f, small),
		snapshotBytes(f, New()),
		valid[:len(valid)/2],
		[]byte("{\"version\":1}\n"),
		[]byte("{\"version\":2}\n"),
		[]byte("{\"version\":1}\n{\"t\":\"bogus\",\"v\":{}}\n"),
		[]byte("{\"version\":1}\n{\"t\":\"kv\",\"v\":{\"Key\":\"a\",\"Session\":\"s\"}}\n{\"t\":\"tombstones\",\"v\":{\"Key\":\"b\",\"Index\":3}}\n"),
		[]byte("{\"version\":1}\n{\"t\":\"index\",\"v\":{\"Table\":\"kv\",\"Index\":18446744073709551615}}\n"),
		[]byte("garbage"),
		{},
		{0xff, 0x00},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		mustKVSet(t, s, 1, "existing", "v")
		mustSession(t, s, 2, &api.SessionEntry{ID: "s1"})
		before := snapshotBytes(t, s)
		abandon := s.AbandonCh()

		err := s.Restore(bytes.NewReader(data))
		if err != nil {
			if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
				t.Fatalf("failed Restore (%v) changed the store:\n before %s\n after  %s", err, before, after)
			}
			if isClosed(abandon) {
				t.Fatalf("failed Restore closed AbandonCh")
			}
			return
		}
		if !isClosed(abandon) {
			t.Fatalf("successful Restore left AbandonCh open")
		}
		// Whatever was accepted must survive another round trip
		// unchanged, or the next Raft snapshot would lose or alter it.
		var buf bytes.Buffer
		if _, err := s.Snapshot().WriteTo(&buf); err != nil {
			t.Fatalf("restored store cannot be snapshotted: %v", err)
		}
		first := bytes.Clone(buf.Bytes())
		again := New()
		if err := again.Restore(&buf); err != nil {
			t.Fatalf("re-restoring the store's own snapshot: %v\n%s", err, first)
		}
		if second := snapshotBytes(t, again); !bytes.Equal(first, second) {
			t.Fatalf("snapshot not stable across a round trip:\n first  %s\n second %s", first, second)
		}
		// Reads on the restored store must not fail or panic.
		if _, _, err := s.KVList(nil, ""); err != nil {
			t.Fatalf("KVList after restore: %v", err)
		}
		_ = s.LatestIndex()
		if _, _, err := s.SessionList(nil, ""); err != nil {
			t.Fatalf("SessionList after restore: %v", err)
		}
		if _, _, err := s.Members(nil); err != nil {
			t.Fatalf("Members after restore: %v", err)
		}
	})
}
