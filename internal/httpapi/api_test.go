package httpapi_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/httpapi"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for a probe already in flight;
	// it ends by itself within one probe interval.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}

type reply struct {
	code   int
	body   string
	header http.Header
}

// start starts a cluster and lets do and send reach its agents as the
// holder of its management token.
func start(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	c := testcluster.Start(t, opts)
	rc := &rawClient{token: c.Token, http: http.DefaultClient}
	if c.CACert != "" {
		pemData, err := os.ReadFile(c.CACert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemData)
		rc.http = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	for _, n := range c.Nodes {
		clients.Store(n.Agent().APIAddr(), rc)
	}
	return c
}

// rawClient is how do reaches one cluster's agents.
type rawClient struct {
	http  *http.Client
	token string
}

// clients maps API addresses to their cluster's rawClient.
var clients sync.Map

// send sends req to an agent of a cluster made by start.
func send(req *http.Request) (*http.Response, error) {
	rc := &rawClient{http: http.DefaultClient}
	if v, ok := clients.Load(req.URL.Host); ok {
		rc = v.(*rawClient)
	}
	if rc.token != "" {
		req.Header.Set("Authorization", "Bearer "+rc.token)
	}
	return rc.http.Do(req)
}

func do(t *testing.T, method, url string, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := send(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(data), header: resp.Header}
}

func TestBadInputIsRejectedWithReason(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 1, Insecure: true})
	base := c.Nodes[0].Agent().APIURL()
	tests := []struct {
		name, method, path string
		body               string
		code               int
		msg                string
	}{
		{name: "key over 1 KiB", method: "PUT", path: "/v1/kv/" + strings.Repeat("k", 1025), body: "v", code: 413, msg: "1024"},
		{name: "value over 512 KiB", method: "PUT", path: "/v1/kv/big", body: strings.Repeat("v", 512<<10+1), code: 413, msg: "524288"},
		{name: "control character in key", method: "PUT", path: "/v1/kv/a%01b", body: "v", code: 400, msg: "control character"},
		{name: "invalid UTF-8 key", method: "PUT", path: "/v1/kv/a%ffb", body: "v", code: 400, msg: "UTF-8"},
		{name: "missing key", method: "PUT", path: "/v1/kv/", body: "v", code: 400, msg: "missing key"},
		{name: "bad cas", method: "PUT", path: "/v1/kv/x?cas=abc", body: "v", code: 400, msg: "cas"},
		{name: "bad index", method: "GET", path: "/v1/kv/x?index=-1", code: 400, msg: "index"},
		{name: "bad wait", method: "GET", path: "/v1/kv/x?index=1&wait=soon", code: 400, msg: "wait"},
		{name: "malformed session JSON", method: "PUT", path: "/v1/session/create", body: `{"TTL": "10s",`, code: 400, msg: "malformed JSON"},
		{name: "session field of wrong type", method: "PUT", path: "/v1/session/create", body: `{"TTL": 10}`, code: 400, msg: `"TTL"`},
		{name: "unknown session field", method: "PUT", path: "/v1/session/create", body: `{"Tll": "10s"}`, code: 400, msg: "Tll"},
		{name: "bad TTL", method: "PUT", path: "/v1/session/create", body: `{"TTL": "forever"}`, code: 400, msg: "TTL"},
		{name: "TTL too short", method: "PUT", path: "/v1/session/create", body: `{"TTL": "10ms"}`, code: 400, msg: "between"},
		{name: "bad behavior", method: "PUT", path: "/v1/session/create", body: `{"Behavior": "explode"}`, code: 400, msg: "Behavior"},
		{name: "acquire with unknown session", method: "PUT", path: "/v1/kv/l?acquire=nope", body: "v", code: 404, msg: "session"},
		{name: "renew unknown session", method: "PUT", path: "/v1/session/renew/nope", code: 404, msg: "not found"},
		{name: "forwarded command without payload", method: "POST", path: "/v1/internal/apply-batch", body: packed(`{"op":"kv.set"}`), code: 400, msg: "needs kv"},
		{name: "unknown forwarded command", method: "POST", path: "/v1/internal/apply-batch", body: packed(`{"op":"rm -rf"}`), code: 400, msg: "unknown command"},
		{name: "null command in a batch", method: "POST", path: "/v1/internal/apply-batch", body: packed(`null`), code: 400, msg: "command 0"},
		{name: "invalid command in a batch", method: "POST", path: "/v1/internal/apply-batch", body: packed(`{"op":"kv.delete","key":"x"}`, `{"op":"bogus"}`), code: 400, msg: "command 1"},
		{name: "damaged binary command", method: "POST", path: "/v1/internal/apply-batch", body: packed("\xc1\x01\x00"), code: 400, msg: "decoding command"},
		{name: "batch that is not packed", method: "POST", path: "/v1/internal/apply-batch", body: `[{"op":"kv.delete"}]`, code: 400, msg: "not a packed entry"},
		{name: "unknown endpoint", method: "GET", path: "/v1/nope", code: 404, msg: "no such endpoint"},
		{name: "wrong method on kv", method: "PATCH", path: "/v1/kv/x", code: 405, msg: "PATCH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := do(t, tc.method, base+tc.path, body)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d (body %s)", r.code, tc.code, r.body)
			}
			var e struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Status != tc.code {
				t.Fatalf("error body %q is not the JSON error shape: %v", r.body, err)
			}
			if !strings.Contains(e.Error, tc.msg) {
				t.Fatalf("error %q does not mention %q", e.Error, tc.msg)
			}
		})
	}
	// Nothing of the rejected writes was applied.
	if r := do(t, "GET", base+"/v1/kv/?recurse", nil); r.code != 404 {
		t.Fatalf("store is not empty after rejected writes: %d %s", r.code, r.body)
	}
}

func TestKeysAreNeverCleanedIntoOtherKeys(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 1})
	base := c.Nodes[0].Agent().APIURL()
	do(t, "PUT", base+"/v1/kv/lead", strings.NewReader("a"))
	for _, p := range []string{"/v1/kv/tmp/../lead", "/v1/kv/x//y", "/v1/kv/./z"} {
		if r := do(t, "PUT", base+p, strings.NewReader("b")); r.code != 200 {
			t.Fatalf("PUT %s: %d %s", p, r.code, r.body)
		}
	}
	if r := do(t, "DELETE", base+"/v1/kv/junk/../lead", nil); r.code != 200 {
		t.Fatalf("DELETE: %d", r.code)
	}
	if r := do(t, "GET", base+"/v1/kv/lead?raw", nil); r.body != "a" {
		t.Fatalf("lead = %q, want it untouched", r.body)
	}
	r := do(t, "GET", base+"/v1/kv/?keys", nil)
	var keys []string
	_ = json.Unmarshal([]byte(r.body), &keys)
	if strings.Join(keys, ",") != "./z,lead,tmp/../lead,x//y" {
		t.Fatalf("keys = %v", keys)
	}
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	// Self is nil: /v1/agent/self panics inside the handler.
	a := httpapi.New(httpapi.Config{NodeName: "n"})
	srv := httptest.NewServer(a)
	defer srv.Close()
	r := do(t, "GET", srv.URL+"/v1/agent/self", nil)
	if r.code != 500 || !strings.Contains(r.body, "internal error") {
		t.Fatalf("panic answered %d %q, want 500 JSON", r.code, r.body)
	}
	// The server still answers.
	if r := do(t, "GET", srv.URL+"/v1/status/health", nil); r.code != 200 {
		t.Fatalf("after a panic: %d", r.code)
	}
}

func TestBlockingQuery(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 3})
	// Watch on a follower, write through another node.
	var follower, other *testcluster.Node
	for _, n := range c.Nodes {
		if n != c.Leader() {
			if follower == nil {
				follower = n
			} else {
				other = n
			}
		}
	}
	base := follower.Agent().APIURL()
	put := do(t, "PUT", other.Agent().APIURL()+"/v1/kv/watched", strings.NewReader("1"))
	idx := put.header.Get("X-Herd-Index")
	if idx == "" || put.header.Get("X-Consul-Index") != idx {
		t.Fatalf("write index headers: %v", put.header)
	}

	// No change: returns at the wait time with the same index.
	start := time.Now()
	r := do(t, "GET", base+"/v1/kv/watched?index="+idx+"&wait=400ms", nil)
	took := time.Since(start)
	if r.code != 200 || r.header.Get("X-Herd-Index") != idx {
		t.Fatalf("timed-out query: %d index %s", r.code, r.header.Get("X-Herd-Index"))
	}
	if took < 400*time.Millisecond || took > 2*time.Second {
		t.Fatalf("blocking query without change returned after %s, want about 400ms", took)
	}

	// A change: returns promptly with the new value.
	done := make(chan reply, 1)
	start = time.Now()
	go func() {
		req, _ := http.NewRequest("GET", base+"/v1/kv/watched?index="+idx+"&wait=30s", nil)
		resp, err := send(req)
		if err != nil {
			done <- reply{}
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		done <- reply{code: resp.StatusCode, body: string(data), header: resp.Header}
	}()
	time.Sleep(200 * time.Millisecond) // let the query block first
	do(t, "PUT", other.Agent().APIURL()+"/v1/kv/watched", strings.NewReader("2"))
	select {
	case r := <-done:
		if r.code != 200 || !strings.Contains(r.body, `"Value":"Mg=="`) {
			t.Fatalf("woken query: %d %s", r.code, r.body)
		}
		if since := time.Since(start); since > 2*time.Second {
			t.Fatalf("woken after %s", since)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not return after a change")
	}

	// A prefix listing wakes on a delete under it and its index rises.
	r = do(t, "GET", base+"/v1/kv/?recurse", nil)
	listIdx := r.header.Get("X-Herd-Index")
	go func() {
		time.Sleep(200 * time.Millisecond)
		do(t, "DELETE", other.Agent().APIURL()+"/v1/kv/watched", nil)
	}()
	r = do(t, "GET", base+"/v1/kv/?recurse&index="+listIdx+"&wait=10s", nil)
	before, _ := strconv.ParseUint(listIdx, 10, 64)
	after, _ := strconv.ParseUint(r.header.Get("X-Herd-Index"), 10, 64)
	if r.code != 404 || after <= before {
		t.Fatalf("list after delete: %d index %s (was %s)", r.code, r.header.Get("X-Herd-Index"), listIdx)
	}
}

func TestMetricsAreValidAndCoverSubsystems(t *testing.T) {
	c := start(t, testcluster.Options{Servers: 1})
	a := c.Nodes[0].Agent()
	base := a.APIURL()
	do(t, "PUT", base+"/v1/kv/m", bytes.NewReader([]byte("x")))
	do(t, "GET", base+"/v1/kv/m", nil)
	problems, err := testutil.GatherAndLint(a.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	r := do(t, "GET", base+"/v1/metrics", nil)
	for _, want := range []string{
		"herd_raft_leader_changes_total", "herd_raft_commit_duration_seconds_bucket", "herd_raft_apply_duration_seconds_bucket",
		"herd_raft_last_index", "herd_members{state=\"alive\"} 1", `herd_http_requests_total{code="200",method="PUT",route="/v1/kv/{key...}"} 1`,
		"herd_http_request_duration_seconds_bucket", `herd_kv_operations_total{op="put"} 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/v1/metrics lacks %s", want)
		}
	}
}

// packed frames commands as a forwarded batch.
func packed(cmds ...string) string {
	items := make([][]byte, len(cmds))
	for i, c := range cmds {
		items[i] = []byte(c)
	}
	return string(server.PackCommands(items))
}
