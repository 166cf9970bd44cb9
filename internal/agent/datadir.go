package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/internal/version"
)

// identityFile marks a directory as a herd data dir and says whose it is.
const identityFile = "node.json"

type identity struct {
	NodeName string    `json:"node_name"`
	Created  time.Time `json:"created"`
	Version  string    `json:"version"`
	Format   int       `json:"format"`
}

// openDataDir checks that dir is empty or belongs to node, creates it and
// its identity file when new, and takes an exclusive lock on it so two
// agents never share one. It never deletes anything: a foreign or corrupt
// directory is refused with an explanation.
func openDataDir(dir, node string) (unlock func(), err error) {
	// Refuse a foreign or corrupt directory before touching it.
	if err := checkIdentity(dir, node, false); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	lockPath := filepath.Join(dir, "LOCK")
	lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("data dir %s is in use by another herd agent (lock on %s): %w", dir, lockPath, err)
	}
	unlock = func() {
		_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
	}
	if err := checkIdentity(dir, node, true); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// checkIdentity refuses a directory that is not this node's; with create
// set it writes the identity of a new, empty directory.
func checkIdentity(dir, node string, create bool) error {
	path := filepath.Join(dir, identityFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) && !create {
			return nil // will be created
		}
		if err != nil {
			return fmt.Errorf("data dir %s: %w", dir, err)
		}
		for _, e := range entries {
			if e.Name() != "LOCK" {
				return fmt.Errorf("data dir %s is not empty and has no %s: it is not a herd data dir; refusing to use it (choose an empty directory)", dir, identityFile)
			}
		}
		if !create {
			return nil
		}
		id := identity{NodeName: node, Created: time.Now().UTC(), Version: version.Version, Format: 1}
		buf, _ := json.MarshalIndent(id, "", "  ")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, append(buf, '\n'), 0o600); err != nil {
			return fmt.Errorf("data dir %s: writing identity: %w", dir, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("data dir %s: writing identity: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data dir %s: reading %s: %w", dir, identityFile, err)
	}
	var id identity
	if err := json.Unmarshal(data, &id); err != nil || id.NodeName == "" {
		if err == nil {
			err = errors.New("no node_name")
		}
		return fmt.Errorf("data dir %s: %s is corrupt (%v); refusing to start, nothing was changed", dir, identityFile, err)
	}
	if id.Format != 1 {
		return fmt.Errorf("data dir %s: format %d is not supported by this version (%s)", dir, id.Format, version.Version)
	}
	if id.NodeName != node {
		return fmt.Errorf("data dir %s belongs to node %q, not %q: use that node name or another directory", dir, id.NodeName, node)
	}
	return nil
}
