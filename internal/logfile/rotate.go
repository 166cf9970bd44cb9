package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// Defaults of a Rotator's Config and of Run's interval.
const (
	// DefaultMaxSize is the size past which a file is rotated: 10 MiB.
	DefaultMaxSize int64 = 10 << 20
	// DefaultMaxFiles is how many rotated copies of a file are kept.
	DefaultMaxFiles = 3
	// DefaultInterval is how often Run checks the files.
	DefaultInterval = 10 * time.Second
)

// Config configures a Rotator.
type Config struct {
	// MaxSize is the size in bytes past which a file is rotated. Zero means
	// DefaultMaxSize (10 MiB).
	MaxSize int64
	// MaxFiles is how many rotated copies ("<name>.1" to "<name>.N") are
	// kept; the oldest is dropped. Zero means DefaultMaxFiles (3).
	MaxFiles int
	// Logger receives rotation failures in Run. Nil means slog.Default().
	Logger *slog.Logger
}

// Rotator rotates files by copy and truncate once they pass a size. It is
// safe for concurrent use; rotations are done one at a time.
type Rotator struct {
	maxSize  int64
	maxFiles int
	log      *slog.Logger

	// mu serializes rotations, so that two checks of one file never shift
	// its copies at the same time.
	mu sync.Mutex
}

// New returns a Rotator for cfg, or an error naming the invalid field.
func New(cfg Config) (*Rotator, error) {
	switch {
	case cfg.MaxSize < 0:
		return nil, fmt.Errorf("logfile: max size %d is negative", cfg.MaxSize)
	case cfg.MaxFiles < 0:
		return nil, fmt.Errorf("logfile: max files %d is negative", cfg.MaxFiles)
	}
	r := &Rotator{maxSize: cfg.MaxSize, maxFiles: cfg.MaxFiles, log: cfg.Logger}
	if r.maxSize == 0 {
		r.maxSize = DefaultMaxSize
	}
	if r.maxFiles == 0 {
		r.maxFiles = DefaultMaxFiles
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Check rotates path if it is larger than the maximum size: its rotated
// copies shift up by one (the oldest beyond the maximum count is removed),
// the file is copied to "<path>.1" and then truncated to zero. A missing
// file is not an error: there is nothing to rotate.
func (r *Rotator) Check(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() <= r.maxSize {
		return nil
	}
	if err := r.shift(path); err != nil {
		return err
	}
	return copyTruncate(path, rotatedName(path, 1), fi.Mode().Perm())
}

// shift makes room for a new "<path>.1": it removes "<path>.<maxFiles>"
// and any older copies left by a larger maximum, then renames .N-1 to .N,
// down to .1 to .2.
func (r *Rotator) shift(path string) error {
	for i := r.maxFiles; ; i++ {
		err := os.Remove(rotatedName(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("logfile: drop oldest copy: %w", err)
		}
	}
	for i := r.maxFiles - 1; i >= 1; i-- {
		err := os.Rename(rotatedName(path, i), rotatedName(path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logfile: shift copy: %w", err)
		}
	}
	return nil
}

// copyTruncate copies path to dst up to its current end and then
// truncates path to zero.
func copyTruncate(path, dst string, perm fs.FileMode) (err error) {
	src, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("logfile: open for rotation: %w", err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("logfile: create copy: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("logfile: close copy: %w", cerr)
		}
	}()
	if _, err := io.Copy(out, src); err != nil {
		return fmt.Errorf("logfile: copy %s: %w", path, err)
	}
	// The copy must be on disk before the original is emptied, or a crash
	// could keep the truncation and lose the copy.
	if err := out.Sync(); err != nil {
		return fmt.Errorf("logfile: sync copy: %w", err)
	}
	// Catch up with what was appended during the sync, so that only the
	// bytes appended between this last read and the truncation are lost.
	if _, err := io.Copy(out, src); err != nil {
		return fmt.Errorf("logfile: copy %s: %w", path, err)
	}
	// A line being written while we read may have been copied in part;
	// the truncation loses the rest of it, so drop the part too: rotated
	// files end with a whole line, never with a torn one.
	if err := trimToLastLine(out); err != nil {
		return err
	}
	if err := src.Truncate(0); err != nil {
		return fmt.Errorf("logfile: truncate %s: %w", path, err)
	}
	return nil
}

// trimToLastLine cuts f after its last newline. A file without one (a
// single line longer than what was copied) is kept whole.
func trimToLastLine(f *os.File) error {
	end, err := f.Seek(0, io.SeekCurrent)
	if err != nil || end == 0 {
		return err
	}
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := int64(len(buf))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return fmt.Errorf("logfile: read copy: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if cut := pos + int64(i) + 1; cut < end {
				if err := f.Truncate(cut); err != nil {
					return fmt.Errorf("logfile: trim copy: %w", err)
				}
			}
			return nil
		}
	}
	return nil
}

// Run checks every file paths returns, at once and then every interval
// (zero or less means DefaultInterval), until ctx ends. paths is called
// before each round, so the set of files may change. Failures are logged,
// once per file until the error changes, and do not stop the loop. Run
// returns when ctx is done and starts no goroutine.
func (r *Rotator) Run(ctx context.Context, interval time.Duration, paths func() []string) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := map[string]string{} // path -> last error logged
	for ctx.Err() == nil {
		seen := map[string]bool{}
		for _, p := range paths() {
			seen[p] = true
			err := r.Check(p)
			switch {
			case err != nil && failing[p] != err.Error():
				failing[p] = err.Error()
				r.log.Warn("log rotation failed", "path", p, "err", err)
			case err == nil && failing[p] != "":
				delete(failing, p)
				r.log.Info("log rotation works again", "path", p)
			}
		}
		for p := range failing {
			if !seen[p] {
				delete(failing, p)
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// rotatedName is the name of path's n-th rotated copy.
func rotatedName(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}
