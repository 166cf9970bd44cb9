package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// The whole path: a service applied with the CLI on a server reaches a
// client agent's gateway, which routes to a real backend; drain, show and
// rm act on every gateway.
func TestApplyServiceAndRouteThroughClientGateway(t *testing.T) {
	backend := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	b1, b2 := backend("one"), backend("two")
	c := start(t, testcluster.Options{Servers: 1, Clients: 1, Configure: func(i int, cfg *config.Config) {
		if i == 1 {
			cfg.Gateway.HTTP = "127.0.0.1:0"
		}
	}})
	server, client := c.Nodes[0], c.Nodes[1]
	gw := client.Agent().GatewayAddr()
	if gw == "" {
		t.Fatal("client agent runs no gateway")
	}
	file := filepath.Join(t.TempDir(), "web.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`kind: service
name: web
routes:
  - host: web.test
backends:
  - address: %s
  - address: %s
health_check:
  path: /
  interval: 200ms
  timeout: 100ms
`, strings.TrimPrefix(b1.URL, "http://"), strings.TrimPrefix(b2.URL, "http://"))), 0o644)

	addr := "--address=" + server.Agent().APIAddr()
	if r := herd(t, addr, "apply", "-f", file); r.code != 0 || !strings.Contains(r.stdout, "service/web applied") {
		t.Fatalf("apply: %+v", r)
	}
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", "http://"+gw+"/", nil)
		req.Host = "web.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	seen := map[string]bool{}
	testcluster.WaitFor(t, 10*time.Second, "the client's gateway to route to both backends", func() bool {
		if code, body := get(); code == 200 {
			seen[body] = true
		}
		return seen["one"] && seen["two"]
	})

	if r := herd(t, addr, "service", "ls"); r.code != 0 || !strings.Contains(r.stdout, "web") || !strings.Contains(r.stdout, "web.test/") {
		t.Fatalf("service ls: %+v", r)
	}
	caddr := "--address=" + client.Agent().APIAddr()
	if r := herd(t, caddr, "service", "show", "web"); r.code != 0 || strings.Count(r.stdout, "healthy") < 2 {
		t.Fatalf("service show on the client: %+v", r)
	}

	if r := herd(t, addr, "backend", "drain", "web", strings.TrimPrefix(b2.URL, "http://")); r.code != 0 {
		t.Fatalf("drain: %+v", r)
	}
	testcluster.WaitFor(t, 10*time.Second, "the drained backend to leave rotation", func() bool {
		for range 6 {
			if _, body := get(); body != "one" {
				return false
			}
		}
		return true
	})

	// Bad input is refused whole, naming the field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: service\nname: web\nroutes: [{host: web.test}]\nbackends: [{address: nowhere}]\n"), 0o644)
	if r := herd(t, addr, "apply", "-f", bad); r.code != 1 || !strings.Contains(r.stderr, "backends[0].address") {
		t.Fatalf("apply of a bad file: %+v", r)
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("a refused apply changed the running service: %d", code)
	}

	if r := herd(t, addr, "service", "rm", "web"); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	testcluster.WaitFor(t, 10*time.Second, "the removed service's route to go", func() bool {
		code, _ := get()
		return code == 404
	})
	if r := herd(t, addr, "service", "rm", "web"); r.code != 1 || !strings.Contains(r.stderr, "web") {
		t.Fatalf("rm of a missing service: %+v", r)
	}
}
