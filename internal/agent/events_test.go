package agent_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// TestEventsTellANodeLossInOrder kills a node that runs a replica and
// checks, on a live event stream and in the stored ring, that the
// cluster's events say what happened in the order it happened: the node
// failed, its replica was lost, a replacement was placed elsewhere and
// started.
func TestEventsTellANodeLossInOrder(t *testing.T) {
	bin := webServer(t)
	c := testcluster.Start(t, testcluster.Options{Servers: 3, Clients: 1})
	leader := c.Leader()
	cl := leader.Client(t)
	ctx := testcluster.Ctx(t, time.Minute)

	// The cluster's formation is on record already.
	evs, meta, err := cl.Events(ctx, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, ev := range evs {
		types = append(types, ev.Type)
		if i > 0 && ev.Index != evs[i-1].Index+1 {
			t.Fatalf("event indexes are not consecutive: %d after %d", ev.Index, evs[i-1].Index)
		}
		if ev.Time.IsZero() || ev.RaftIndex == 0 {
			t.Fatalf("event without a time or Raft index: %+v", ev)
		}
	}
	for _, want := range []string{api.EventLeaderElected, api.EventMemberJoined, api.EventTokenCreated} {
		if !slices.Contains(types, want) {
			t.Fatalf("no %s among the formation's events: %v", want, types)
		}
	}

	if _, err := cl.ServicePut(ctx, spreadService(bin, "v1", 3)); err != nil {
		t.Fatal(err)
	}
	rs := waitHealthy(t, cl, "web", 3, "v1")

	// Follow from here, through a client agent (proxied to a server)
	// unless that is the node that dies.
	victim, lost := awayFromLeader(t, c, rs, leader)
	via := c.Node("client1")
	if via == victim {
		via = leader
	}
	var mu sync.Mutex
	var seen []*api.Event
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		// A client agent proxies the stream to one server, which may be
		// the one that dies: like any reader, resume from the last event
		// seen when the stream breaks.
		cl := via.Client(t)
		after := meta.Index
		for {
			err := cl.FollowEvents(fctx, after, nil, func(ev *api.Event) error {
				mu.Lock()
				seen = append(seen, ev)
				mu.Unlock()
				after = ev.Index // the callback runs on this goroutine
				return nil
			})
			if fctx.Err() != nil {
				done <- err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	c.Kill(victim)
	var order []string
	testcluster.WaitFor(t, 30*time.Second, "member.failed, replica.lost, replica.moved and replica.started in the stream", func() bool {
		mu.Lock()
		defer mu.Unlock()
		order = order[:0]
		var repl string
		for _, ev := range seen {
			switch {
			case ev.Type == api.EventMemberFailed && ev.Subject == victim.Name:
				order = append(order, "failed")
			case ev.Type == api.EventReplicaLost && ev.Subject == lost.ID:
				order = append(order, "lost")
			case ev.Type == api.EventReplicaMoved && ev.Attrs["service"] == "web":
				order = append(order, "moved")
				repl = ev.Subject
			case ev.Type == api.EventReplicaStarted && repl != "" && ev.Subject == repl:
				order = append(order, "started")
			}
		}
		return len(order) >= 4
	})
	if !slices.Equal(order[:4], []string{"failed", "lost", "moved", "started"}) {
		t.Fatalf("events in the wrong order: %v", order)
	}
	// The stored ring says the same, in the same order, with rising
	// indexes.
	mu.Lock()
	streamed := slices.Clone(seen)
	mu.Unlock()
	stored, _, err := cl.Events(ctx, meta.Index, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range streamed {
		if i >= len(stored) || stored[i].Index != streamed[i].Index || stored[i].Type != streamed[i].Type {
			t.Fatalf("stream and ring differ at %d: %+v vs %+v", i, streamed[i], stored)
		}
	}
	// A filtered read.
	failed, _, err := cl.Events(ctx, meta.Index, []string{api.EventMemberFailed}, nil)
	if err != nil || len(failed) == 0 || failed[0].Subject != victim.Name {
		t.Fatalf("member.failed events: %+v, %v", failed, err)
	}
	// Unknown types are refused, naming the known ones.
	_, _, err = cl.Events(ctx, 0, []string{"member.exploded"}, nil)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 400 {
		t.Fatalf("unknown type: %v", err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the stream ended with %v", err)
	}
}

// TestStalledEventReaderBlocksNothing: a reader that opens the stream
// and reads nothing while the cluster records events holds up no write;
// what it reads later is complete and in order.
func TestStalledEventReaderBlocksNothing(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 1})
	ctx := testcluster.Ctx(t, time.Minute)
	n := c.Nodes[0]
	cl := n.Client(t)
	_, meta, err := cl.Events(ctx, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(c.CACert)
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", n.Agent().APIAddr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events?follow&index=%d HTTP/1.1\r\nHost: herd\r\nAuthorization: Bearer %s\r\n\r\n", meta.Index, c.Token)

	const writes = 200
	start := time.Now()
	for i := range writes {
		if _, err := cl.JoinTokenCreate(ctx, &api.JoinTokenRequest{Description: strings.Repeat("x", 200)}); err != nil {
			t.Fatalf("write %d with a stalled reader: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d event-making writes with a stalled reader took %s", writes, took.Round(time.Millisecond))

	// Now read: every event, in order.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream answered %d", resp.StatusCode)
	}
	dec := json.NewDecoder(resp.Body)
	next := meta.Index + 1
	for got := 0; got < writes; {
		var ev api.Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("after %d events: %v", got, err)
		}
		if ev.Index != next {
			t.Fatalf("event %d after %d", ev.Index, next-1)
		}
		next++
		if ev.Type == api.EventTokenCreated {
			got++
		}
	}
}

// TestGatewayHealthBecomesEvents: a backend that starts failing its
// checks is reported by the gateway as backend.ejected, and as
// backend.restored when it passes again; with both backends down the
// service goes into panic mode and out of it.
func TestGatewayHealthBecomesEvents(t *testing.T) {
	var failing atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
	}})
	ctx := testcluster.Ctx(t, time.Minute)
	cl := c.Nodes[0].Client(t)
	_, meta, err := cl.Events(ctx, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(up.URL, "http://")
	svc := &api.Service{Name: "shop", Routes: []api.Route{{Host: "shop.test"}}, Backends: []api.Backend{{Address: addr}},
		HealthCheck: &api.HealthCheck{Path: "/", Interval: api.Duration(100 * time.Millisecond), Rise: 1, Fall: 1}}
	if _, err := cl.ServicePut(ctx, svc); err != nil {
		t.Fatal(err)
	}
	wait := func(typ string, cond func(*api.Event) bool) *api.Event {
		t.Helper()
		var found *api.Event
		testcluster.WaitFor(t, 10*time.Second, typ+" event", func() bool {
			evs, _, err := cl.Events(ctx, meta.Index, []string{typ}, nil)
			if err != nil {
				return false
			}
			for _, ev := range evs {
				if cond(ev) {
					found = ev
					return true
				}
			}
			return false
		})
		return found
	}
	failing.Store(true)
	ej := wait(api.EventBackendEjected, func(ev *api.Event) bool { return ev.Attrs["backend"] == addr })
	if ej.Attrs["gateway"] != "server1" || ej.Attrs["service"] != "shop" || ej.Attrs["cause"] != "check" {
		t.Fatalf("ejection event: %+v", ej)
	}
	wait(api.EventPanicMode, func(ev *api.Event) bool { return ev.Attrs["state"] == "on" && ev.Subject == "shop" })
	failing.Store(false)
	wait(api.EventBackendRestored, func(ev *api.Event) bool { return ev.Attrs["backend"] == addr && ev.Index > ej.Index })
	wait(api.EventPanicMode, func(ev *api.Event) bool { return ev.Attrs["state"] == "off" })

	// Only nodes may report gateway events, and only those types.
	err = cl.PostEvent(ctx, &api.Event{Type: api.EventBackendEjected, Subject: "forged"})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("a management token posting an event: %v", err)
	}
}
