package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.yaml.in/yaml/v3"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// exportedMetrics runs an agent with a gateway, a routed service, traffic
// and KV writes, and returns the names of the metrics it exports, with a
// histogram's series names (_bucket, _sum, _count) included.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer backend.Close()
	c := testcluster.Start(t, testcluster.Options{Servers: 1, Configure: func(i int, cfg *config.Config) {
		cfg.Gateway.HTTP = "127.0.0.1:0"
	}})
	ctx := testcluster.Ctx(t, 30*time.Second)
	n := c.Nodes[0]
	cl := n.Client(t)
	if _, err := cl.ServicePut(ctx, &api.Service{Name: "web", Routes: []api.Route{{Host: "web.test"}},
		Backends: []api.Backend{{Address: strings.TrimPrefix(backend.URL, "http://")}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.KVPut(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 10*time.Second, "a request through the gateway", func() bool {
		req, _ := http.NewRequest("GET", "http://"+n.Agent().GatewayAddr()+"/", nil)
		req.Host = "web.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// Every metric of an agent that runs a gateway, replicas' supervisor
	// and Raft follows Prometheus's naming conventions.
	problems, err := testutil.GatherAndLint(n.Agent().Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := n.Agent().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); !strings.HasPrefix(name, "herd_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s lacks the herd_ prefix", name)
		}
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

// TestGrafanaDashboardUsesOnlyExportedMetrics: deploy/grafana/herd.json is
// a valid dashboard whose every query names only metrics herd exports, and
// deploy/prometheus.yml scrapes /v1/metrics over HTTPS with a token that
// deploy/prometheus-policy.yaml allows.
func TestGrafanaDashboardUsesOnlyExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	data, err := os.ReadFile("../../deploy/grafana/herd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("herd.json is not valid JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("herd.json: title %q uid %q, %d panels", dash.Title, dash.UID, len(dash.Panels))
	}
	metric := regexp.MustCompile(`\bherd_[a-z0-9_]+`)
	queries := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			names := metric.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no herd metric", p.Title, tg.Expr)
			}
			for _, name := range names {
				if !exported[name] {
					t.Errorf("panel %q: %s is not a metric herd exports", p.Title, name)
				}
			}
		}
	}
	t.Logf("%d panels, %d queries checked against %d exported series names", len(dash.Panels), queries, len(exported))

	var prom struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			Scheme      string `yaml:"scheme"`
			MetricsPath string `yaml:"metrics_path"`
			TLSConfig   struct {
				CAFile string `yaml:"ca_file"`
			} `yaml:"tls_config"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			FileSD []struct {
				Files []string `yaml:"files"`
			} `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	data, err = os.ReadFile("../../deploy/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &prom); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if len(prom.ScrapeConfigs) != 1 {
		t.Fatalf("prometheus.yml: %d scrape configs", len(prom.ScrapeConfigs))
	}
	sc := prom.ScrapeConfigs[0]
	if sc.Scheme != "https" || sc.MetricsPath != "/v1/metrics" || sc.TLSConfig.CAFile == "" ||
		sc.Authorization.Type != "Bearer" || sc.Authorization.CredentialsFile == "" || len(sc.FileSD) == 0 {
		t.Fatalf("prometheus.yml scrape config: %+v", sc)
	}
	var pol api.ACLPolicy
	data, err = os.ReadFile("../../deploy/prometheus-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := config.UnmarshalStrict(data, &pol); err != nil {
		t.Fatalf("prometheus-policy.yaml: %v", err)
	}
	if err := acl.FromAPI(pol).Validate(); err != nil {
		t.Fatalf("prometheus-policy.yaml: %v", err)
	}
	if !acl.Compile(acl.FromAPI(pol)).Allow(acl.ResourceOperator, "", acl.Read) {
		t.Fatal("prometheus-policy.yaml does not grant what /v1/metrics needs (operator read)")
	}
}
