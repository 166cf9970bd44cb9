package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PollInterval is how often Follow looks for new bytes.
const PollInterval = 200 * time.Millisecond

// tailChunk is how much Tail reads at a time while it looks back for lines.
const tailChunk = 32 << 10

// Files returns the rotated set of the live file path, in the order its
// bytes were written: the oldest copy ("<path>.N") first, then "<path>.1",
// then path itself. Only files that exist are listed; a missing directory
// gives an empty set. Copies are found by name, whatever the rotator's
// maximum count.
func Files(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logfile: list copies of %s: %w", path, err)
	}
	var nums []int
	live := false
	for _, e := range entries {
		name := e.Name()
		if name == base {
			live = true
			continue
		}
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		// Only the names the rotator writes: "1", "2", ..., no "01".
		if n, err := strconv.Atoi(suffix); err == nil && n > 0 && strconv.Itoa(n) == suffix {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	slices.Reverse(nums)
	files := make([]string, 0, len(nums)+1)
	for _, n := range nums {
		files = append(files, rotatedName(path, n))
	}
	if live {
		files = append(files, path)
	}
	return files, nil
}

// Tail writes the last n lines of the files in paths to w, reading them as
// one stream in the order given (the order Files returns). A line is what
// ends in '\n', and a last line without one also counts. n <= 0 writes
// everything. A file that does not exist is skipped, since rotation may
// move it while Tail runs.
//
// Tail reads each file up to its size when Tail opened it and returns that
// size for the last path (0 if it did not exist): FollowFrom with that
// offset continues exactly where Tail stopped.
func Tail(w io.Writer, paths []string, n int) (int64, error) {
	type part struct {
		f    *os.File
		size int64
	}
	var parts []part
	defer func() {
		for _, p := range parts {
			p.f.Close()
		}
	}()
	var end int64
	for i, path := range paths {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("logfile: tail: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, fmt.Errorf("logfile: tail: %w", err)
		}
		parts = append(parts, part{f: f, size: fi.Size()})
		if i == len(paths)-1 {
			end = fi.Size()
		}
	}

	// Look back from the end for the newline before the n-th last line.
	// The stream's final byte, if a newline, ends the last line and does
	// not start a new one.
	startPart, startOff := 0, int64(0)
	if n > 0 {
		buf := make([]byte, tailChunk)
		found, last := 0, true
	search:
		for i := len(parts) - 1; i >= 0; i-- {
			for pos := parts[i].size; pos > 0; {
				m := min(int64(len(buf)), pos)
				pos -= m
				chunk := buf[:m]
				if _, err := parts[i].f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
					return 0, fmt.Errorf("logfile: tail %s: %w", parts[i].f.Name(), err)
				}
				for j := len(chunk) - 1; j >= 0; j-- {
					if last {
						last = false
						if chunk[j] == '\n' {
							continue
						}
					}
					if chunk[j] == '\n' {
						found++
						if found == n {
							startPart, startOff = i, pos+int64(j)+1
							break search
						}
					}
				}
			}
		}
	}

	for i := startPart; i < len(parts); i++ {
		off := int64(0)
		if i == startPart {
			off = startOff
		}
		if _, err := io.Copy(w, io.NewSectionReader(parts[i].f, off, parts[i].size-off)); err != nil {
			return 0, fmt.Errorf("logfile: tail %s: %w", parts[i].f.Name(), err)
		}
	}
	return end, nil
}

// Follow writes to w what is appended to path from now on, until ctx
// ends; it is FollowFrom at the file's current size.
func Follow(ctx context.Context, path string, w io.Writer) error {
	var offset int64
	if fi, err := os.Stat(path); err == nil {
		offset = fi.Size()
	}
	return FollowFrom(ctx, path, offset, w)
}

// FollowFrom writes to w the bytes of path from offset on, and then what
// is appended, looking every PollInterval, until ctx ends; it then returns
// nil. A path that does not exist yet is waited for.
//
// When the file shrinks below what was read, it was truncated by rotation:
// FollowFrom first writes what it had not read yet from the copy
// "<path>.1", then continues from the start of the truncated file. When
// path is replaced by another file, the new file is read from its start.
// A rotation and refill past the read offset within one poll interval
// goes unnoticed; at 10 MiB per rotation that takes a writer of 50 MB/s.
//
// If w has a Flush method (http.Flusher, bufio.Writer), it is called after
// each write.
func FollowFrom(ctx context.Context, path string, offset int64, w io.Writer) error {
	fl := &follower{path: path, offset: offset, w: w}
	defer fl.close()
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		if err := fl.poll(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// follower is the state of one FollowFrom.
type follower struct {
	path   string
	offset int64
	w      io.Writer
	f      *os.File // nil until path exists
	fi     fs.FileInfo
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
	}
}

// poll writes what is new since the last poll.
func (fl *follower) poll() error {
	cur, err := os.Stat(fl.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Removed or not created yet; keep reading what is open.
	case err != nil:
		return fmt.Errorf("logfile: follow: %w", err)
	case fl.f == nil || !os.SameFile(fl.fi, cur):
		if fl.f != nil {
			// Replaced: finish the old file, then start the new one.
			if err := fl.copyNew(); err != nil {
				return err
			}
			fl.f.Close()
			fl.f, fl.offset = nil, 0
		}
		f, err := os.Open(fl.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logfile: follow: %w", err)
		}
		fl.f, fl.fi = f, cur
	}
	if fl.f == nil {
		return nil
	}
	return fl.copyNew()
}

// copyNew writes the open file's bytes past the offset, first handling a
// truncation.
func (fl *follower) copyNew() error {
	fi, err := fl.f.Stat()
	if err != nil {
		return fmt.Errorf("logfile: follow: %w", err)
	}
	size := fi.Size()
	if size < fl.offset {
		if err := fl.copyRotated(); err != nil {
			return err
		}
		fl.offset = 0
	}
	if size == fl.offset {
		return nil
	}
	n, err := io.Copy(fl.w, io.NewSectionReader(fl.f, fl.offset, size-fl.offset))
	fl.offset += n
	if err != nil {
		return fmt.Errorf("logfile: follow %s: %w", fl.path, err)
	}
	flush(fl.w)
	return nil
}

// copyRotated writes the tail of "<path>.1" past the offset: the bytes
// appended after the last poll and before the rotation copied them away.
// A copy shorter than the offset is not the one made of this file.
func (fl *follower) copyRotated() error {
	f, err := os.Open(rotatedName(fl.path, 1))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logfile: follow: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("logfile: follow: %w", err)
	}
	if fi.Size() <= fl.offset {
		return nil
	}
	if _, err := io.Copy(fl.w, io.NewSectionReader(f, fl.offset, fi.Size()-fl.offset)); err != nil {
		return fmt.Errorf("logfile: follow %s: %w", f.Name(), err)
	}
	flush(fl.w)
	return nil
}

// flush flushes w if it buffers.
func flush(w io.Writer) {
	switch f := w.(type) {
	case interface{ Flush() }:
		f.Flush()
	case interface{ Flush() error }:
		_ = f.Flush() // a failed flush shows in the next write
	}
}
