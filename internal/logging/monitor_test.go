package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestMonitorFansOutAtEachReadersLevel(t *testing.T) {
	var base bytes.Buffer
	m := NewMonitor()
	l := slog.New(m.Handler(slog.NewTextHandler(&base, &slog.HandlerOptions{Level: slog.LevelInfo}))).With("node", "n1")

	l.Debug("before anyone listens")
	debug := m.Subscribe(slog.LevelDebug, 10)
	warn := m.Subscribe(slog.LevelWarn, 1)
	l.Debug("details", "k", 1)
	l.Warn("trouble", "err", "x")
	l.Error("worse")

	if strings.Contains(base.String(), "details") || !strings.Contains(base.String(), "trouble") {
		t.Fatalf("the agent's own log changed with a monitor:\n%s", base.String())
	}
	var got []map[string]any
	for len(debug.C) > 0 {
		var rec map[string]any
		if err := json.Unmarshal(<-debug.C, &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if len(got) != 3 || got[0]["msg"] != "details" || got[0]["node"] != "n1" || got[0]["k"] != float64(1) || got[1]["msg"] != "trouble" {
		t.Fatalf("debug reader got %v", got)
	}
	// The warn reader's buffer holds one line: the error line was dropped
	// for it, and counted.
	if len(warn.C) != 1 || warn.Dropped() != 1 || warn.Dropped() != 0 {
		t.Fatalf("warn reader: %d lines buffered", len(warn.C))
	}
	debug.Close()
	warn.Close()
	l.Error("after everyone left")
	if m.wants(slog.LevelError) {
		t.Fatal("the monitor still renders lines with no reader")
	}
}
