package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/herd-cluster/herd/internal/config"
)

// auditLog is where the API records every write and every refused
// request, as JSON lines.
type auditLog struct {
	l *slog.Logger
	c io.Closer
}

// openAuditLog opens the audit log the config names: a file (appended
// to, readable by this user only), stdout, or none. Security off: none.
func openAuditLog(cfg config.Config, dataDir string) (*auditLog, error) {
	if cfg.Security.Disabled || cfg.Security.AuditLog == "off" {
		return nil, nil
	}
	if cfg.Security.AuditLog == "stdout" {
		return &auditLog{l: slog.New(slog.NewJSONHandler(os.Stdout, nil))}, nil
	}
	path := cfg.Security.AuditLog
	if path == "" {
		path = filepath.Join(dataDir, "audit.log")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("security.audit_log: %w", err)
	}
	return &auditLog{l: slog.New(slog.NewJSONHandler(f, nil)), c: f}, nil
}

func (a *auditLog) logger() *slog.Logger {
	if a == nil {
		return nil
	}
	return a.l
}

func (a *auditLog) close() {
	if a != nil && a.c != nil {
		a.c.Close()
	}
}
