// Package logging builds the agent's slog logger and adapts the loggers of
// the libraries herd embeds (hashicorp/raft's hclog, memberlist's
// *log.Logger) so that everything ends up in one slog stream.
package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format "text" or "json".
func New(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by config; info on error
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Discard returns a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// HCLog returns an hclog.Logger for hashicorp/raft and friends that
// forwards every line to l with the component name as an attribute.
func HCLog(l *slog.Logger, component string) hclog.Logger {
	lv := hclog.Info
	switch {
	case l.Enabled(context.Background(), slog.LevelDebug):
		lv = hclog.Debug
	case !l.Enabled(context.Background(), slog.LevelInfo):
		lv = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       component,
		Level:      lv,
		JSONFormat: true,
		Output:     &hclogWriter{l: l.With("component", component)},
	})
}

// hclogWriter turns hclog's JSON lines into slog records.
type hclogWriter struct{ l *slog.Logger }

func (w *hclogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			w.l.Info(string(line))
			continue
		}
		lvl := slog.LevelInfo
		switch m["@level"] {
		case "trace", "debug":
			lvl = slog.LevelDebug
		case "warn":
			lvl = slog.LevelWarn
		case "error":
			lvl = slog.LevelError
		}
		msg, _ := m["@message"].(string)
		attrs := make([]any, 0, 2*len(m))
		for k, v := range m {
			if strings.HasPrefix(k, "@") {
				continue
			}
			attrs = append(attrs, k, v)
		}
		w.l.Log(context.Background(), lvl, msg, attrs...)
	}
	return len(p), nil
}

// StdLog returns a *log.Logger for libraries such as memberlist that write
// lines prefixed with "[LEVEL]"; each line becomes a slog record at that
// level.
func StdLog(l *slog.Logger, lib string) *log.Logger {
	return log.New(&stdWriter{l: l.With("lib", lib)}, "", 0)
}

type stdWriter struct{ l *slog.Logger }

func (w *stdWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	lvl := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			lvl = l
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	if i := strings.Index(line, ": "); i > 0 && i < 20 && !strings.Contains(line[:i], " ") {
		line = line[i+2:] // drop the library's own "memberlist: " prefix
	}
	w.l.Log(context.Background(), lvl, line)
	return len(p), nil
}
