package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/proxy"
)

func TestAccessLogWritesJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := openAccessLog(path)
	if err != nil {
		t.Fatal(err)
	}
	l.log(&proxy.AccessEntry{Time: time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC), Method: "GET", Host: "web.test", Path: "/a",
		RemoteAddr: "127.0.0.1:5555", Status: 200, Bytes: 64, Duration: 1500 * time.Microsecond, Upstream: "127.0.0.1:8081", Attempts: 2, RequestID: "r-1"})
	l.close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("not one JSON line: %q: %v", data, err)
	}
	want := map[string]any{"time": "2026-11-22T01:02:03.000Z", "method": "GET", "host": "web.test", "path": "/a", "status": 200.0,
		"bytes": 64.0, "duration_ms": 1.5, "backend": "127.0.0.1:8081", "attempts": 2.0, "retries": 1.0, "client": "127.0.0.1:5555", "request_id": "r-1"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	if _, err := openAccessLog(filepath.Join(t.TempDir(), "no", "such", "dir", "a.log")); err == nil || !strings.Contains(err.Error(), "gateway.access_log") {
		t.Fatalf("unwritable access log: %v", err)
	}
}
