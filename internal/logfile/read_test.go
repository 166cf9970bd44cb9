package logfile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stdout.log")
	for _, name := range []string{"stdout.log", "stdout.log.1", "stdout.log.2", "stdout.log.10", "stdout.log.01", "stdout.log.x", "stdout.log.1.tmp", "stderr.log.1"} {
		writeFile(t, filepath.Join(dir, name), name)
	}
	got, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".10", path + ".2", path + ".1", path}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}

	if got, err := Files(filepath.Join(dir, "none", "stdout.log")); err != nil || len(got) != 0 {
		t.Errorf("Files in a missing dir = %v, %v; want none", got, err)
	}
	os.Remove(path)
	got, err = Files(path)
	if err != nil || !slices.Equal(got, want[:3]) {
		t.Errorf("Files without the live file = %v, %v", got, err)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	old, mid, live := filepath.Join(dir, "f.2"), filepath.Join(dir, "f.1"), filepath.Join(dir, "f")
	writeFile(t, old, "a1\na2\n")
	writeFile(t, mid, "b1\nb2\nb")    // a line cut by the rotation...
	writeFile(t, live, "3\nc1\nc2\n") // ...continues in the live file
	all := []string{old, mid, live}

	tests := []struct {
		name  string
		paths []string
		n     int
		want  string
	}{
		{name: "last line", paths: all, n: 1, want: "c2\n"},
		{name: "within live file", paths: all, n: 2, want: "c1\nc2\n"},
		{name: "line across files", paths: all, n: 3, want: "b3\nc1\nc2\n"},
		{name: "into the oldest", paths: all, n: 6, want: "a2\nb1\nb2\nb3\nc1\nc2\n"},
		{name: "more than there are", paths: all, n: 100, want: "a1\na2\nb1\nb2\nb3\nc1\nc2\n"},
		{name: "all", paths: all, n: 0, want: "a1\na2\nb1\nb2\nb3\nc1\nc2\n"},
		{name: "missing files skipped", paths: []string{filepath.Join(dir, "f.9"), old, live}, n: 3, want: "3\nc1\nc2\n"},
		{name: "no trailing newline", paths: []string{mid}, n: 2, want: "b2\nb"},
		{name: "nothing", paths: nil, n: 5, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if _, err := Tail(&got, tc.paths, tc.n); err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("Tail(%d) = %q, want %q", tc.n, got.String(), tc.want)
			}
		})
	}

	end, err := Tail(&bytes.Buffer{}, all, 1)
	if err != nil || end != int64(len("3\nc1\nc2\n")) {
		t.Errorf("Tail returned end %d, %v; want the live file's size", end, err)
	}
	end, err = Tail(&bytes.Buffer{}, []string{old, filepath.Join(dir, "gone")}, 1)
	if err != nil || end != 0 {
		t.Errorf("Tail with a missing live file returned end %d, %v; want 0", end, err)
	}
}

func TestTailLongFile(t *testing.T) {
	// More than one read chunk, so the backward search crosses chunks.
	path := filepath.Join(t.TempDir(), "f")
	var b strings.Builder
	for b.Len() < 3*tailChunk {
		b.WriteString(strings.Repeat("z", 99) + "\n")
	}
	writeFile(t, path, b.String())
	var got bytes.Buffer
	if _, err := Tail(&got, []string{path}, 700); err != nil {
		t.Fatal(err)
	}
	if got.Len() != 700*100 || !strings.HasSuffix(b.String(), got.String()) {
		t.Errorf("Tail(700) gave %d bytes, want 70000 from the end", got.Len())
	}
}

// TestFollowerPolls drives one follower by hand, so that every step of a
// rotation is at a known point between polls.
func TestFollowerPolls(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stdout.log")
	var out bytes.Buffer
	fl := &follower{path: path, w: &out}
	defer fl.close()
	poll := func(want string) {
		t.Helper()
		out.Reset()
		if err := fl.poll(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("poll wrote %q, want %q", out.String(), want)
		}
	}

	poll("") // the file does not exist yet
	appendFile(t, path, "one\n")
	poll("one\n")
	appendFile(t, path, "two\n")
	poll("two\n")
	poll("")

	// Appended and rotated away between two polls: read from the copy.
	r := newRotator(t, 1, 3)
	appendFile(t, path, "three\n")
	if err := r.Check(path); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "four\n")
	poll("three\nfour\n")

	// Truncated with nothing missed, then appended.
	if err := r.Check(path); err != nil {
		t.Fatal(err)
	}
	poll("")
	appendFile(t, path, "five\n")
	poll("five\n")

	// Replaced by a new file: read it from its start.
	os.Remove(path)
	poll("")
	writeFile(t, path, "new\n")
	poll("new\n")
}

func TestFollowFromStreamsUntilCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	writeFile(t, path, "before\n")
	r := newRotator(t, 5, 3)

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- FollowFrom(ctx, path, int64(len("before\n")), &out) }()

	appendFile(t, path, "after\n")
	waitFor(t, func() bool { return strings.Contains(out.String(), "after\n") })
	if err := r.Check(path); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "rotated\n")
	waitFor(t, func() bool { return strings.Contains(out.String(), "rotated\n") })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("FollowFrom returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FollowFrom did not return after cancel")
	}
	if got := out.String(); got != "after\nrotated\n" {
		t.Errorf("FollowFrom wrote %q", got)
	}
}

func TestFollowStartsAtTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	writeFile(t, path, "before\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*PollInterval)
	defer cancel()
	var out bytes.Buffer
	if err := Follow(ctx, path, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("Follow wrote %q, which was there before it started", out.String())
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}
