package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
)

func TestCommandEncodingRoundTrips(t *testing.T) {
	cmds := map[string]*Command{
		"set":             {Op: OpKVSet, KV: &api.KVPair{Key: "a/b", Flags: 42, Value: []byte("hello")}},
		"set empty value": {Op: OpKVSet, KV: &api.KVPair{Key: "e", Value: []byte{}}},
		"set nil value":   {Op: OpKVSet, KV: &api.KVPair{Key: "n"}},
		"cas":             {Op: OpKVCAS, KV: &api.KVPair{Key: "c", Value: []byte{0, 1, 0xff}}, CAS: 1 << 40},
		"delete":          {Op: OpKVDelete, Key: "gone"},
		"delete cas":      {Op: OpKVDeleteCAS, Key: "gone", CAS: 7},
		"lock":            {Op: OpKVLock, KV: &api.KVPair{Key: "l", Value: []byte("me")}, ID: "0b7e-session"},
		"unlock":          {Op: OpKVUnlock, KV: &api.KVPair{Key: "l"}, ID: "0b7e-session"},
		"delete tree":     {Op: OpKVDeleteTree, Key: "tree/"},
		"session":         {Op: OpSessionCreate, Session: &api.SessionEntry{ID: "s", TTL: "10s", LockDelay: time.Second}},
		"member":          {Op: OpMemberUpsert, Member: &api.Member{Name: "n1", Status: "alive"}},
		"kv with indexes": {Op: OpKVSet, KV: &api.KVPair{Key: "i", CreateIndex: 3, ModifyIndex: 4}},
	}
	for name, c := range cmds {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		binary := data[0] == kvMagic
		if want := name != "delete tree" && name != "session" && name != "member" && name != "kv with indexes"; binary != want {
			t.Errorf("%s: binary encoding = %v, want %v", name, binary, want)
		}
		got, err := DecodeCommand(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s: decoded %+v (kv %+v), want %+v (kv %+v)", name, got, got.KV, c, c.KV)
		}
	}
}

func TestDecodeRejectsDamagedCommands(t *testing.T) {
	good, _ := EncodeCommand(&Command{Op: OpKVLock, KV: &api.KVPair{Key: "k", Value: []byte("value")}, ID: "s"})
	cases := map[string][]byte{
		"empty":          {},
		"bad JSON":       []byte(`{"op":`),
		"unknown code":   {kvMagic, 99, 0, 0, 0, 0, 0, 0},
		"truncated":      good[:len(good)-2],
		"trailing":       append(append([]byte{}, good...), 0),
		"unknown kind":   {kvMagic, 1, 0, 0, 1, 'k', 0, 0, 9},
		"huge length":    {kvMagic, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"only the magic": {kvMagic},
	}
	for name, data := range cases {
		if c, err := DecodeCommand(data); err == nil {
			t.Errorf("%s: decoded %+v from a damaged command", name, c)
		}
	}
}

// FuzzDecodeCommand: no input panics the decoder, and what it accepts
// encodes back to a command that decodes the same.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*Command{
		{Op: OpKVSet, KV: &api.KVPair{Key: "a", Value: []byte("v")}},
		{Op: OpKVDeleteCAS, Key: "d", CAS: 3},
		{Op: OpKVUnlock, KV: &api.KVPair{Key: "l"}, ID: "s"},
		{Op: OpSessionDestroy, ID: "s"},
	} {
		data, _ := EncodeCommand(c)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", c, err)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("decoding the re-encoding of %+v: %v", c, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed %+v into %+v", c, c2)
		}
	})
}
