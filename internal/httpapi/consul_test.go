package httpapi_test

import (
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/herd-cluster/herd/internal/testcluster"
)

// consulClient returns the official Consul Go client pointed at a node.
func consulClient(t *testing.T, c *testcluster.Cluster, n *testcluster.Node) *consul.Client {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = n.Agent().APIAddr()
	cfg.Scheme = "https"
	cfg.Token = c.Token // sent as X-Consul-Token
	cfg.TLSConfig = consul.TLSConfig{CAFile: c.CACert}
	cc, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// TestConsulClientWorksUnchanged drives herd with hashicorp/consul/api, as
// consul-template, Traefik or Patroni would, through a follower.
func TestConsulClientWorksUnchanged(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 3})
	var follower *testcluster.Node
	for _, n := range c.Nodes {
		if n != c.Leader() {
			follower = n
			break
		}
	}
	cc := consulClient(t, c, follower)
	kv := cc.KV()

	// put / get
	if _, err := kv.Put(&consul.KVPair{Key: "app/config/db", Value: []byte("postgres://db"), Flags: 42}, nil); err != nil {
		t.Fatalf("put: %v", err)
	}
	p, meta, err := kv.Get("app/config/db", nil)
	if err != nil || p == nil || string(p.Value) != "postgres://db" || p.Flags != 42 {
		t.Fatalf("get: %+v, %v", p, err)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("query meta: %+v", meta)
	}
	if p, _, err := kv.Get("app/missing", nil); err != nil || p != nil {
		t.Fatalf("get missing: %+v, %v", p, err)
	}

	// list and keys
	_, _ = kv.Put(&consul.KVPair{Key: "app/config/cache", Value: []byte("redis")}, nil)
	_, _ = kv.Put(&consul.KVPair{Key: "app/name", Value: []byte("shop")}, nil)
	pairs, _, err := kv.List("app/", nil)
	if err != nil || len(pairs) != 3 || pairs[0].Key != "app/config/cache" {
		t.Fatalf("list: %v, %v", pairs, err)
	}
	keys, _, err := kv.Keys("app/", "/", nil)
	if err != nil || len(keys) != 2 || keys[0] != "app/config/" || keys[1] != "app/name" {
		t.Fatalf("keys: %v, %v", keys, err)
	}

	// CAS
	p, _, _ = kv.Get("app/name", nil)
	ok, _, err := kv.CAS(&consul.KVPair{Key: "app/name", Value: []byte("shop2"), ModifyIndex: p.ModifyIndex}, nil)
	if err != nil || !ok {
		t.Fatalf("cas with current index: %v, %v", ok, err)
	}
	ok, _, err = kv.CAS(&consul.KVPair{Key: "app/name", Value: []byte("shop3"), ModifyIndex: p.ModifyIndex}, nil)
	if err != nil || ok {
		t.Fatalf("cas with stale index succeeded: %v, %v", ok, err)
	}
	ok, _, err = kv.CAS(&consul.KVPair{Key: "app/new", Value: []byte("x"), ModifyIndex: 0}, nil)
	if err != nil || !ok {
		t.Fatalf("cas create: %v, %v", ok, err)
	}
	p, _, _ = kv.Get("app/new", nil)
	if ok, _, err := kv.DeleteCAS(&consul.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex + 1000}, nil); err != nil || ok {
		t.Fatalf("delete-cas with wrong index: %v, %v", ok, err)
	}
	if ok, _, err := kv.DeleteCAS(&consul.KVPair{Key: "app/new", ModifyIndex: p.ModifyIndex}, nil); err != nil || !ok {
		t.Fatalf("delete-cas: %v, %v", ok, err)
	}

	// blocking query
	_, meta, _ = kv.Get("app/name", nil)
	got := make(chan string, 1)
	go func() {
		p, _, err := kv.Get("app/name", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil || p == nil {
			got <- "error"
			return
		}
		got <- string(p.Value)
	}()
	time.Sleep(100 * time.Millisecond)
	_, _ = kv.Put(&consul.KVPair{Key: "app/name", Value: []byte("woken")}, nil)
	select {
	case v := <-got:
		if v != "woken" {
			t.Fatalf("blocking get returned %q", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking get never returned")
	}

	// delete and delete tree
	if _, err := kv.Delete("app/name", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.DeleteTree("app/", nil); err != nil {
		t.Fatal(err)
	}
	if pairs, _, _ := kv.List("app/", nil); len(pairs) != 0 {
		t.Fatalf("after delete tree: %v", pairs)
	}

	// sessions
	sess := cc.Session()
	id, _, err := sess.Create(&consul.SessionEntry{Name: "worker", TTL: "10s", LockDelay: time.Millisecond, Behavior: "release"}, nil)
	if err != nil || id == "" {
		t.Fatalf("session create: %q, %v", id, err)
	}
	if se, _, err := sess.Renew(id, nil); err != nil || se == nil || se.ID != id || se.TTL != "10s" {
		t.Fatalf("renew: %+v, %v", se, err)
	}
	info, _, err := sess.Info(id, nil)
	if err != nil || info == nil || info.Name != "worker" || info.Node != follower.Name {
		t.Fatalf("info: %+v, %v", info, err)
	}
	list, _, err := sess.List(nil)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}

	// acquire / release
	ok, _, err = kv.Acquire(&consul.KVPair{Key: "locks/a", Value: []byte("me"), Session: id}, nil)
	if err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	id2, _, _ := sess.Create(&consul.SessionEntry{TTL: "10s", LockDelay: time.Millisecond}, nil)
	if ok, _, _ := kv.Acquire(&consul.KVPair{Key: "locks/a", Session: id2}, nil); ok {
		t.Fatal("second session acquired a held lock")
	}
	p, _, _ = kv.Get("locks/a", nil)
	if p.Session != id || p.LockIndex != 1 {
		t.Fatalf("held lock: %+v", p)
	}
	if ok, _, err := kv.Release(&consul.KVPair{Key: "locks/a", Session: id}, nil); err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	if ok, _, _ := kv.Acquire(&consul.KVPair{Key: "locks/a", Session: id2}, nil); !ok {
		t.Fatal("second session could not acquire a released lock")
	}
	if _, err := sess.Destroy(id2, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := kv.Get("locks/a", nil); p.Session != "" {
		t.Fatalf("destroying the holder did not release: %+v", p)
	}
	if se, _, err := sess.Renew(id2, nil); err != nil || se != nil {
		t.Fatalf("renew of destroyed session: %+v, %v", se, err)
	}
	_, _ = sess.Destroy(id, nil)
}

// TestConsulLockHelper runs two api.Lock contenders: one holds, the other
// waits and takes over when the first unlocks, and again when the first
// holder's session is destroyed out from under it.
func TestConsulLockHelper(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 3})
	a := consulClient(t, c, c.Nodes[0])
	b := consulClient(t, c, c.Nodes[1])
	opts := func(cl *consul.Client) *consul.Lock {
		l, err := cl.LockOpts(&consul.LockOptions{Key: "service/leader", SessionTTL: "10s", LockWaitTime: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	la, lb := opts(a), opts(b)
	lostA, err := la.Lock(nil)
	if err != nil || lostA == nil {
		t.Fatalf("first lock: %v", err)
	}
	var wg sync.WaitGroup
	acquired := make(chan time.Time, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		lost, err := lb.Lock(nil)
		if err == nil && lost != nil {
			acquired <- time.Now()
		}
	}()
	select {
	case <-acquired:
		t.Fatal("second contender got a held lock")
	case <-time.After(500 * time.Millisecond):
	}
	released := time.Now()
	if err := la.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-acquired:
		t.Logf("lock passed %s after unlock", at.Sub(released).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("waiting contender never acquired the released lock")
	}
	wg.Wait()
	if err := lb.Unlock(); err != nil {
		t.Fatal(err)
	}
	_ = la.Destroy()
	_ = lb.Destroy()
}
