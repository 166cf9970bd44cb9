package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func TestServiceEndpoints(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 1})
	base := c.Nodes[0].Agent().APIURL()
	put := func(name, body string) reply {
		return do(t, "PUT", base+"/v1/service/"+name, strings.NewReader(body))
	}
	if r := put("web", `{"routes":[{"host":"web.test"}],"backends":[{"address":"127.0.0.1:8081","weight":2}]}`); r.code != 200 || !strings.Contains(r.body, `"index"`) {
		t.Fatalf("create: %+v", r)
	}
	r := do(t, "GET", base+"/v1/service/web", nil)
	var e api.ServiceEntry
	if r.code != 200 || json.Unmarshal([]byte(r.body), &e) != nil || e.Name != "web" || e.Backends[0].Weight != 2 || e.CreateIndex == 0 {
		t.Fatalf("get: %+v", r)
	}
	if r.header.Get("X-Herd-Index") == "" {
		t.Fatal("no index header on a service read")
	}

	bad := []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"unknown field", "web", `{"routes":[{"host":"a.test"}],"backend":[]}`, 400, "backend"},
		{"bad address", "web", `{"routes":[{"host":"a.test"}],"backends":[{"address":"nowhere"}]}`, 400, "backends[0].address"},
		{"bad duration", "web", `{"routes":[{"host":"a.test"}],"slow_start":"5 seconds"}`, 400, "slow_start"},
		{"wrong type", "web", `{"routes":[{"host":"a.test"}],"backends":[{"address":"127.0.0.1:1","weight":"2"}]}`, 400, "weight"},
		{"name differs from path", "web", `{"name":"other","routes":[{"host":"a.test"}]}`, 400, "differs"},
		{"route owned by another service", "api", `{"routes":[{"host":"web.test"}]}`, 409, "web"},
		{"not JSON", "web", `kind: service`, 400, ""},
	}
	for _, b := range bad {
		if r := put(b.path, b.body); r.code != b.code || !strings.Contains(r.body, b.want) {
			t.Errorf("%s: %d %s; want %d mentioning %q", b.name, r.code, r.body, b.code, b.want)
		}
	}
	// Nothing of the refused specs was applied.
	r = do(t, "GET", base+"/v1/service/web", nil)
	if !strings.Contains(r.body, "web.test") || strings.Contains(r.body, "a.test") {
		t.Fatalf("a refused spec changed the service: %s", r.body)
	}
	if r := do(t, "GET", base+"/v1/service/api", nil); r.code != 404 {
		t.Fatalf("refused service exists: %+v", r)
	}

	if r := do(t, "PUT", base+"/v1/service/web/drain?backend=127.0.0.1:8081", nil); r.code != 200 {
		t.Fatalf("drain: %+v", r)
	}
	if r := do(t, "PUT", base+"/v1/service/web/drain?backend=127.0.0.1:9", nil); r.code != 404 {
		t.Fatalf("drain of an unknown backend: %+v", r)
	}
	if r := do(t, "PUT", base+"/v1/service/web/drain", nil); r.code != 400 {
		t.Fatalf("drain without a backend: %+v", r)
	}
	r = do(t, "GET", base+"/v1/services", nil)
	var list []api.ServiceEntry
	if json.Unmarshal([]byte(r.body), &list) != nil || len(list) != 1 || !list[0].Backends[0].Drain {
		t.Fatalf("list after drain: %s", r.body)
	}
	if r := do(t, "DELETE", base+"/v1/service/web", nil); r.code != 200 {
		t.Fatalf("delete: %+v", r)
	}
	if r := do(t, "DELETE", base+"/v1/service/web", nil); r.code != 404 {
		t.Fatalf("second delete: %+v", r)
	}
	if r := do(t, "GET", base+"/v1/services", nil); r.body != "[]\n" && r.body != "[]" {
		t.Fatalf("list after delete: %q", r.body)
	}
	if r := do(t, "GET", base+"/v1/gateway/services", nil); r.code != 404 || !strings.Contains(r.body, "no gateway") {
		t.Fatalf("gateway view on an agent without one: %+v", r)
	}
}
