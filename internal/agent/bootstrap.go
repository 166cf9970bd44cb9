package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/pki"
)

// Files a server that creates a new cluster writes into its
// security.bootstrap_dir: what the operator needs to use the cluster, and
// what the other agents need to join it (with security.token_file).
const (
	// BootstrapManagementToken holds the secret of the management token
	// the server made by bootstrapping the ACLs.
	BootstrapManagementToken = "management.token"
	// BootstrapServerToken holds a join token for servers.
	BootstrapServerToken = "server.token"
	// BootstrapClientToken holds a join token for clients.
	BootstrapClientToken = "client.token"
	// BootstrapCA is the cluster CA certificate (PEM) that API clients
	// trust.
	BootstrapCA = "ca.pem"
)

// BootstrapJoinTTL is how long the join tokens in the bootstrap directory
// are valid: enough to start the other agents of a new cluster, and no
// more, because a server token also carries the cluster secret. A token
// serves any number of joins until then; later joins use a token from
// `herd token create`.
const BootstrapJoinTTL = 24 * time.Hour

// fileBootstrapDue, in the tls directory, says that the bootstrap files
// are not written yet. The server that creates a cluster makes it before
// anything else and removes it once the files are written, so a restart
// after a crash in between writes them; any other restart writes nothing.
const fileBootstrapDue = "bootstrap-files.due"

// prepareBootstrapDir reports whether this server is to write the
// bootstrap files, and if so creates the directory (mode 0700) and, for a
// cluster created on this start, removes the files an earlier cluster left
// there, so that no agent joins with a stale token.
func (a *Agent) prepareBootstrapDir() (bool, error) {
	dir := a.cfg.Security.BootstrapDir
	if dir == "" || a.sec == nil {
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(a.sec.dir, fileBootstrapDue)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("security.bootstrap_dir: %w", err)
		}
		a.logger.Info("not writing the bootstrap files: this server did not create a new cluster on this start (it joined one, or restarted on its state)", "bootstrap_dir", dir)
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("security.bootstrap_dir: %w", err)
	}
	if a.sec.created {
		for _, name := range []string{BootstrapServerToken, BootstrapClientToken, BootstrapManagementToken, BootstrapCA} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, fmt.Errorf("security.bootstrap_dir: removing an earlier cluster's file: %w", err)
			}
		}
	}
	return true, nil
}

// writeBootstrapFiles bootstraps the ACLs of the cluster this server
// created, once it leads, and writes the bootstrap files: ca.pem, then
// management.token, then the join tokens, server.token last, since the
// agents waiting for it need the rest in place. Each file is written
// atomically with mode 0600.
func (a *Agent) writeBootstrapFiles(ctx context.Context) error {
	dir := a.cfg.Security.BootstrapDir
	due := filepath.Join(a.sec.dir, fileBootstrapDue)
	ca, err := os.ReadFile(filepath.Join(a.sec.dir, fileCA))
	if err != nil {
		return fmt.Errorf("reading the cluster CA: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, BootstrapCA), ca); err != nil {
		return err
	}
	mgmtFile := filepath.Join(dir, BootstrapManagementToken)
	var secret string
	if b, err := os.ReadFile(mgmtFile); err == nil {
		// Written before a crash that came before the join tokens.
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		if secret, err = a.bootstrapACL(ctx); err != nil {
			var se *api.StatusError
			if errors.As(err, &se) && se.Code == http.StatusConflict {
				// Someone ran `herd acl bootstrap` first, or this server
				// did and crashed before writing the secret: there is
				// nothing more this server can write.
				_ = os.Remove(due)
			}
			return fmt.Errorf("bootstrapping the ACLs: %w", err)
		}
		if err := writeFileAtomic(mgmtFile, []byte(secret+"\n")); err != nil {
			return err
		}
	}
	c, err := api.NewClientConfig(api.Config{Address: "https://" + a.APIAddr(), TLSConfig: a.sec.clientTLS(), Token: secret, IgnoreEnv: true})
	if err != nil {
		return err
	}
	defer c.Close()
	var expires time.Time
	for _, f := range []struct{ role, file string }{{pki.RoleClient, BootstrapClientToken}, {pki.RoleServer, BootstrapServerToken}} {
		jt, err := createJoinToken(ctx, c, f.role)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, f.file), []byte(jt.Token+"\n")); err != nil {
			return err
		}
		expires = jt.ExpiresAt
	}
	if err := os.Remove(due); err != nil {
		return fmt.Errorf("the bootstrap files are written, but: %w", err)
	}
	a.logger.Info("bootstrap files written", "dir", dir,
		"files", strings.Join([]string{BootstrapCA, BootstrapManagementToken, BootstrapClientToken, BootstrapServerToken}, ","),
		"join_tokens_expire", expires.Format(time.RFC3339))
	return nil
}

// createJoinToken makes a join token for role valid for BootstrapJoinTTL,
// retrying while the cluster cannot make one yet: without a leader (HTTP
// 5xx), or before the new leader has recorded the cluster CA (HTTP 409).
func createJoinToken(ctx context.Context, c *api.Client, role string) (*api.JoinToken, error) {
	wait := 50 * time.Millisecond
	for {
		jt, err := c.JoinTokenCreate(ctx, &api.JoinTokenRequest{Role: role, Description: "bootstrap_dir " + role + " join token", TTL: BootstrapJoinTTL.String()})
		if err == nil {
			return jt, nil
		}
		var se *api.StatusError
		if errors.As(err, &se) && se.Code < 500 && se.Code != http.StatusConflict || ctx.Err() != nil {
			return nil, fmt.Errorf("creating a %s join token: %w", role, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("creating a %s join token: %w", role, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// readTokenFile reads the join token in path, without surrounding
// whitespace. While the file does not exist or is empty it waits, polling
// with back-off (up to a second), until ctx ends; it logs once that it
// waits. Any other error reading the file is returned at once.
func readTokenFile(ctx context.Context, path string, logger *slog.Logger) (string, error) {
	wait := 50 * time.Millisecond
	logged := false
	for {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("security.token_file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		if !logged {
			logger.Info("waiting for join token file", "path", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("security.token_file: waiting for %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
