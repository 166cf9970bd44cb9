package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/state"
)

func TestPackedEntryRoundTrip(t *testing.T) {
	var props []*proposal
	for i := range 5 {
		cmd := &Command{Op: OpKVSet, KV: &api.KVPair{Key: fmt.Sprint("k", i), Value: bytes.Repeat([]byte{'v'}, i*100)}}
		props = append(props, newProposal(cmd, []byte(fmt.Sprintf(`{"op":"kv.set","n":%d,"pad":%q}`, i, bytes.Repeat([]byte{'x'}, i*200)))))
	}
	data := packEntry(datas(props))
	if data[0] != batchMagic {
		t.Fatalf("packed entry starts with %#x", data[0])
	}
	cmds, err := unpackEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != len(props) {
		t.Fatalf("unpacked %d commands, packed %d", len(cmds), len(props))
	}
	for i := range cmds {
		if !bytes.Equal(cmds[i], props[i].data) {
			t.Errorf("command %d: %q, want %q", i, cmds[i], props[i].data)
		}
	}
}

func TestUnpackRejectsDamagedEntries(t *testing.T) {
	good := packEntry([][]byte{[]byte(`{"op":"kv.delete","key":"a"}`), []byte(`{"op":"kv.delete","key":"b"}`)})
	cases := map[string][]byte{
		"empty":       {},
		"json":        []byte(`{"op":"kv.set"}`),
		"no count":    {batchMagic},
		"huge count":  {batchMagic, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated":   good[:len(good)-3],
		"trailing":    append(append([]byte{}, good...), 'x'),
		"long length": {batchMagic, 1, 0x7f, 'a'},
	}
	for name, data := range cases {
		if cmds, err := unpackEntry(data); err == nil {
			t.Errorf("%s: unpacked %d commands from a damaged entry", name, len(cmds))
		}
	}
}

// fill packs waiting proposals until one touches a key already in the
// entry or may not share an entry; that one is handed back to lead the
// next entry, so no key changes twice at one index.
func TestFillStopsAtRepeatedKeyOrUnsharableCommand(t *testing.T) {
	s := &Server{proposals: make(chan *proposal, 16)}
	kv := func(key string) *proposal {
		return newProposal(&Command{Op: OpKVSet, KV: &api.KVPair{Key: key}}, []byte(`{}`))
	}
	a1, b, a2 := kv("a"), kv("b"), kv("a")
	s.proposals <- b
	s.proposals <- a2
	got, carry := s.fill([]*proposal{a1})
	if len(got) != 2 || got[0] != a1 || got[1] != b || carry != a2 {
		t.Fatalf("fill = %d proposals, carry %v; want [a b] and carry the second a", len(got), carry)
	}

	sess := newProposal(&Command{Op: OpSessionDestroy, ID: "s"}, []byte(`{}`))
	if sess.key != "" {
		t.Fatalf("session destroy may share an entry (key %q)", sess.key)
	}
	s.proposals <- sess
	got, carry = s.fill([]*proposal{kv("c")})
	if len(got) != 1 || carry != sess {
		t.Fatalf("fill took a session command into a shared entry: %d proposals, carry %v", len(got), carry)
	}

	for i := range maxPacked + 5 {
		select {
		case s.proposals <- kv(fmt.Sprint("k", i)):
		default:
		}
	}
	got, _ = s.fill([]*proposal{kv("first")})
	if len(got) > maxPacked {
		t.Fatalf("fill packed %d commands, limit %d", len(got), maxPacked)
	}
}

func packCmds(t *testing.T, cmds ...*Command) []byte {
	t.Helper()
	var items [][]byte
	for _, c := range cmds {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, data)
	}
	return packEntry(items)
}

func datas(props []*proposal) [][]byte {
	out := make([][]byte, len(props))
	for i, p := range props {
		out[i] = p.data
	}
	return out
}

// A packed entry applies its commands at its index in one transaction;
// a command that fails (a lock for an unknown session) fails alone while
// the others still apply.
func TestFSMAppliesPackedEntries(t *testing.T) {
	f := newFSM(state.New(), newMetrics(nil, func() *raft.Raft { return nil }, nil))
	res := f.Apply(&raft.Log{Index: 7, Data: packCmds(t,
		&Command{Op: OpKVSet, KV: &api.KVPair{Key: "a", Value: []byte("1")}},
		&Command{Op: OpKVCAS, KV: &api.KVPair{Key: "b", Value: []byte("2")}, CAS: 0},
		&Command{Op: OpKVCAS, KV: &api.KVPair{Key: "c", Value: []byte("3")}, CAS: 99},
	)}).([]*Result)
	if len(res) != 3 || !res[0].OK || !res[1].OK || res[2].OK {
		t.Fatalf("results %+v %+v %+v; want ok, ok, refused", res[0], res[1], res[2])
	}
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		_, kv, _ := f.store.KVGet(nil, key)
		if kv == nil || string(kv.Value) != want || kv.ModifyIndex != 7 || kv.CreateIndex != 7 {
			t.Fatalf("%s = %+v, want value %s at index 7", key, kv, want)
		}
	}
	if _, kv, _ := f.store.KVGet(nil, "c"); kv != nil {
		t.Fatalf("refused CAS wrote c: %+v", kv)
	}
	if got := f.store.LatestIndex(); got != 7 {
		t.Fatalf("latest index %d, want 7", got)
	}

	res = f.Apply(&raft.Log{Index: 8, Data: packCmds(t,
		&Command{Op: OpKVSet, KV: &api.KVPair{Key: "d", Value: []byte("4")}},
		&Command{Op: OpKVLock, KV: &api.KVPair{Key: "e"}, ID: "no-such-session"},
		&Command{Op: OpKVDelete, Key: "a"},
	)}).([]*Result)
	if len(res) != 3 || !res[0].OK || res[1].Error == "" || res[1].Kind != KindNotFound || !res[2].OK {
		t.Fatalf("results %+v %+v %+v; want ok, not found, ok", res[0], res[1], res[2])
	}
	if _, kv, _ := f.store.KVGet(nil, "d"); kv == nil || kv.ModifyIndex != 8 {
		t.Fatalf("d = %+v, want written at 8", kv)
	}
	if _, kv, _ := f.store.KVGet(nil, "a"); kv != nil {
		t.Fatalf("a = %+v, want deleted", kv)
	}
	if _, kv, _ := f.store.KVGet(nil, "e"); kv != nil {
		t.Fatalf("failed lock wrote e: %+v", kv)
	}
	if f.applied.Load() != 8 {
		t.Fatalf("applied %d, want 8", f.applied.Load())
	}
}

// A KV write without its pair (a bug or a hand-made entry) is an error on
// every replica, never a panic in the FSM.
func TestFSMRefusesKVWriteWithoutPair(t *testing.T) {
	f := newFSM(state.New(), newMetrics(nil, func() *raft.Raft { return nil }, nil))
	res := f.Apply(&raft.Log{Index: 3, Data: []byte(`{"op":"kv.set"}`)}).(*Result)
	if res.OK || !strings.Contains(res.Error, "without a key-value pair") || res.Kind != KindInvalid {
		t.Fatalf("result %+v", res)
	}
	if f.applied.Load() != 3 {
		t.Fatalf("applied %d, want 3", f.applied.Load())
	}
}
