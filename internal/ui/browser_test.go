package ui_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
)

// chromium finds Debian's chromium. Without one the test skips, unless
// HERD_UI_TEST=required (make test-ui, which installs it) makes that a
// failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HERD_UI_TEST") == "required" {
		t.Fatal("no chromium found (apt-get install chromium)")
	}
	t.Skip("no chromium on this machine: make test-ui installs it and runs this test")
	return ""
}

// artifacts is where screenshots go: $HERD_ARTIFACTS, else a temp dir
// that the test names in its log.
func artifacts(t *testing.T) string {
	dir := os.Getenv("HERD_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "herd-ui-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, what, js string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &body))
			t.Fatalf("timed out after %s waiting for %s (last error %v); the page says:\n%s", limit, what, err, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil { // 100: PNG
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestDashboardInABrowser drives the dashboard in a real chromium against
// a dev agent with a service whose second backend is down, and KV and
// label values that carry script payloads.
func TestDashboardInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := artifacts(t)

	cfg := config.Default()
	cfg.Dev, cfg.Ephemeral = true, true
	cfg.Ports = config.Ports{}
	cfg.Security.AuditLog = "off"
	if err := cfg.Finalize(); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok, err := a.DevToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: tok, CACert: a.CACertFile(), IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there any more
	payload := `<img src=x onerror="window.__xss=1">`
	shop := &api.Service{Name: "shop", Routes: []api.Route{{Host: "shop.test"}},
		Backends:    []api.Backend{{Address: strings.TrimPrefix(up.URL, "http://")}, {Address: deadAddr, Labels: map[string]string{"note": payload}}},
		HealthCheck: &api.HealthCheck{Path: "/", Interval: api.Duration(200 * time.Millisecond), Rise: 1, Fall: 1}}
	if _, err := cl.ServicePut(ctx, shop); err != nil {
		t.Fatal(err)
	}
	xssKey := `xss/<img src=x onerror="window.__xss=2">` // no "/" after the prefix: a key, not a folder
	if _, _, err := cl.KVPut(ctx, xssKey, []byte(`<script>window.__xss=3</script><b onmouseover="window.__xss=4">bold</b>`), nil); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.WindowSize(1280, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	base := a.APIURL() + "/ui/"
	// Without a token the page asks for one.
	// Chromium abandons a load when the host's network changes, which other
	// tests running at the same time do (Docker containers come and go):
	// that, and only that, is tried again.
	for attempt := 1; ; attempt++ {
		err := chromedp.Run(bctx, chromedp.Navigate(base), chromedp.WaitVisible("#token", chromedp.ByID))
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
			t.Fatalf("opening the dashboard: %v", err)
		}
	}
	shot(t, bctx, dir, "1-login")
	if err := chromedp.Run(bctx, chromedp.SendKeys("#token", tok, chromedp.ByID), chromedp.Click(`#login button`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}

	// Overview: the right counts.
	cards := `Object.fromEntries([...document.querySelectorAll('.card')].map(c => [c.querySelector('.label').textContent, c.querySelector('.value').textContent]))`
	waitJS(t, bctx, "the overview's counts", `(() => { const c = `+cards+`; return c["Nodes up"] === "1" && c["Nodes failed"] === "0" && c["Services"] === "1" && c["Degraded"] === "1" && c["Leader"] === "dev"; })()`, 15*time.Second)
	shot(t, bctx, dir, "2-overview")

	// The service page lists the failed backend as unhealthy.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/service/shop")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the failed backend on the service page",
		fmt.Sprintf(`[...document.querySelectorAll('tr')].some(r => r.textContent.includes(%q) && r.textContent.includes('unhealthy'))`, deadAddr), 15*time.Second)
	shot(t, bctx, dir, "3-service")
	var stray bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.getElementById('view').innerText.split('\n').includes('null')`, &stray)); err != nil || stray {
		t.Fatalf("the service page shows a stray null (%v)", err)
	}

	// A KV write from the UI appears through the API.
	// The page re-renders as live events arrive, which may replace the
	// form between separate steps: fill it and submit it in one script.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/kv/"), chromedp.WaitVisible("#kv-key", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	var submitted bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(`(() => {
		const k = document.getElementById('kv-key'), v = document.getElementById('kv-value'), b = document.querySelector('form.kv button');
		if (!k || !v || !b) return false;
		k.value = 'ui/written'; v.value = 'from the UI'; b.click();
		return true;
	})()`, &submitted)); err != nil || !submitted {
		t.Fatalf("filling in the KV form: %v (form found: %v)", err, submitted)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		kv, _, err := cl.KVGet(ctx, "ui/written", nil)
		if err == nil && kv != nil && string(kv.Value) == "from the UI" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the UI's write did not reach the store: %v %v", kv, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Script payloads in keys, values and labels show as text and never run.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/kv/xss/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the payload key listed as text", `[...document.querySelectorAll('td a[data-key]')].some(a => a.textContent.includes('<img src=x onerror='))`, 10*time.Second)
	// A click by script, for the same reason as the KV form above.
	var clicked bool
	if err := chromedp.Run(bctx, chromedp.Evaluate(`(() => { const a = document.querySelector('td a[data-key]'); if (!a) return false; a.click(); return true })()`, &clicked)); err != nil || !clicked {
		t.Fatalf("opening the payload key: %v (link found: %v)", err, clicked)
	}
	waitJS(t, bctx, "the payload value shown as text", `(document.querySelector('pre.kv-value') || {}).textContent === '<script>window.__xss=3</script><b onmouseover="window.__xss=4">bold</b>'`, 10*time.Second)
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/service/shop")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the label payload in the spec as text", `[...document.querySelectorAll('pre')].some(p => p.textContent.includes('onerror'))`, 10*time.Second)
	shot(t, bctx, dir, "4-payloads")
	var xss any
	if err := chromedp.Run(bctx, chromedp.Evaluate(`window.__xss === undefined ? null : window.__xss`, &xss)); err != nil {
		t.Fatal(err)
	}
	var injected int
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.querySelectorAll('main script, main img, main b').length`, &injected)); err != nil {
		t.Fatal(err)
	}
	if xss != nil || injected != 0 {
		t.Fatalf("a payload ran (window.__xss = %v) or became markup (%d elements)", xss, injected)
	}

	// Raft: the peer with its term and lag.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/raft")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the Raft peer with its lag", `[...document.querySelectorAll('tbody tr')].some(r => { const c = [...r.children].map(td => td.textContent); return c[0] === "dev" && c[2] === "yes" && c[6] === "0"; })`, 10*time.Second)
	shot(t, bctx, dir, "5-raft")

	// Keyboard: Tab reaches the navigation, Enter follows a link.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/"), chromedp.WaitVisible(".card", chromedp.ByQuery),
		chromedp.Evaluate(`document.activeElement && document.activeElement.blur()`, nil)); err != nil {
		t.Fatal(err)
	}
	reached := false
	for range 12 {
		var label string
		if err := chromedp.Run(bctx, chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.textContent`, &label)); err != nil {
			t.Fatal(err)
		}
		if label == "Nodes" {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("Tab never reached the Nodes link")
	}
	if err := chromedp.Run(bctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "Enter to open the nodes page", `location.hash === "#/nodes" && [...document.querySelectorAll('h1')].some(h => h.textContent === "Nodes")`, 10*time.Second)

	// A phone: nothing wider than the screen (wide tables scroll inside
	// their own box).
	if err := chromedp.Run(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"#/service/shop")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the service page on a phone without sideways scrolling",
		`document.querySelector('pre') !== null && document.documentElement.scrollWidth <= window.innerWidth + 1`, 10*time.Second)
	shot(t, bctx, dir, "6-phone")
	if err := chromedp.Run(bctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// Live: a change in the cluster shows within 2 s without a reload.
	if err := chromedp.Run(bctx, chromedp.Navigate(base+"#/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the overview", `(() => { const c = `+cards+`; return c["Services"] === "1"; })()`, 10*time.Second)
	var loads int
	_ = chromedp.Run(bctx, chromedp.Evaluate(`performance.getEntriesByType('navigation').length`, &loads))
	if _, err := cl.ServicePut(ctx, &api.Service{Name: "later", Routes: []api.Route{{Host: "later.test"}}, Backends: []api.Backend{{Address: strings.TrimPrefix(up.URL, "http://")}}}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	waitJS(t, bctx, "the new service counted without a reload", `(() => { const c = `+cards+`; return c["Services"] === "2"; })()`, 2*time.Second)
	t.Logf("the overview showed the new service %s after the write", time.Since(changed).Round(10*time.Millisecond))
	var loadsAfter int
	_ = chromedp.Run(bctx, chromedp.Evaluate(`performance.getEntriesByType('navigation').length`, &loadsAfter))
	if loadsAfter != loads {
		t.Fatalf("the page reloaded (%d navigations, was %d)", loadsAfter, loads)
	}
	shot(t, bctx, dir, "7-live")
}
