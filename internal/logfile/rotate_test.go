package logfile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newRotator(t *testing.T, maxSize int64, maxFiles int) *Rotator {
	t.Helper()
	r, err := New(Config{MaxSize: maxSize, MaxFiles: maxFiles, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestNewDefaultsAndValidation(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if r.maxSize != DefaultMaxSize || r.maxFiles != DefaultMaxFiles {
		t.Errorf("defaults: max size %d, max files %d", r.maxSize, r.maxFiles)
	}
	for _, cfg := range []Config{{MaxSize: -1}, {MaxFiles: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestCheckRotatesPastMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	r := newRotator(t, 10, 3)

	writeFile(t, path, "0123456789") // exactly the maximum: kept
	if err := r.Check(path); err != nil {
		t.Fatal(err)
	}
	if exists(path+".1") || readFile(t, path) != "0123456789" {
		t.Fatal("a file of exactly max size was rotated")
	}

	appendFile(t, path, "a")
	if err := r.Check(path); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path+".1"); got != "0123456789a" {
		t.Errorf("copy = %q", got)
	}
	if got := readFile(t, path); got != "" {
		t.Errorf("live file after rotation = %q, want empty", got)
	}
	fi, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("copy mode %v, want the original's 0644", fi.Mode().Perm())
	}
}

func TestCheckMissingFile(t *testing.T) {
	r := newRotator(t, 10, 3)
	if err := r.Check(filepath.Join(t.TempDir(), "nope.log")); err != nil {
		t.Errorf("Check of a missing file: %v", err)
	}
}

func TestCheckKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stderr.log")
	r := newRotator(t, 4, 2)
	for i := range 5 {
		writeFile(t, path, fmt.Sprintf("round %d", i))
		if err := r.Check(path); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, path+".1"); got != "round 4" {
		t.Errorf(".1 = %q, want the newest copy", got)
	}
	if got := readFile(t, path+".2"); got != "round 3" {
		t.Errorf(".2 = %q", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "stderr.log stderr.log.1 stderr.log.2"; strings.Join(names, " ") != want {
		t.Errorf("files = %v, want %s", names, want)
	}

	// A smaller maximum drops the copies beyond it.
	writeFile(t, path, "round 5")
	if err := newRotator(t, 4, 1).Check(path); err != nil {
		t.Fatal(err)
	}
	if exists(path+".2") || readFile(t, path+".1") != "round 5" {
		t.Errorf("after lowering max files: .2 exists %v, .1 = %q", exists(path+".2"), readFile(t, path+".1"))
	}
}

// TestAppendWriterAcrossRotations writes through one O_APPEND descriptor,
// as a replica does, and rotates between writes: the rotated set holds
// every byte in order and the live file has no hole.
func TestAppendWriterAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newRotator(t, 64, 100)

	var want strings.Builder
	for i := range 50 {
		line := fmt.Sprintf("line %02d\n", i)
		want.WriteString(line)
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := r.Check(path); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d files; the test meant to rotate several times", len(files))
	}
	var got bytes.Buffer
	if _, err := Tail(&got, files, 0); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("rotated set =\n%s\nwant\n%s", got.String(), want.String())
	}
	if live := readFile(t, path); strings.ContainsRune(live, 0) {
		t.Errorf("live file has a hole: %q", live)
	}
}

// TestConcurrentWriterAcrossRotation rotates while a writer appends: a
// line may be lost only while a rotation runs; every line written after
// the last rotation returned is in the live file, and no line is torn.
func TestConcurrentWriterAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newRotator(t, 512, 3)

	var begun atomic.Int64 // number of the line being written
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			begun.Store(int64(i))
			if _, err := fmt.Fprintf(f, "line %06d\n", i); err != nil {
				return
			}
		}
	})
	rotations := 0
	deadline := time.Now().Add(10 * time.Second)
	for rotations < 5 && time.Now().Before(deadline) {
		before := readFileIfAny(path + ".1")
		if err := r.Check(path); err != nil {
			t.Error(err)
			break
		}
		if readFileIfAny(path+".1") != before {
			rotations++
		}
	}
	// The line being written now may have been cut by the rotation; the
	// next ones were all written after it.
	after := begun.Load() + 1
	for begun.Load() < after+100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if rotations < 5 {
		t.Fatalf("only %d rotations", rotations)
	}

	// The whole set: no line torn or repeated; lines may be missing only
	// where a rotation cut.
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	if _, err := Tail(&all, files, 0); err != nil {
		t.Fatal(err)
	}
	prev := int64(-1)
	for _, l := range strings.Split(strings.TrimSuffix(all.String(), "\n"), "\n") {
		var n int64
		if _, err := fmt.Sscanf(l, "line %d", &n); err != nil || len(l) != len("line 000000") {
			t.Fatalf("torn or foreign line %q", l)
		}
		if n <= prev {
			t.Fatalf("line %d after line %d", n, prev)
		}
		prev = n
	}

	live := readFile(t, path)
	lines := strings.Split(strings.TrimSuffix(live, "\n"), "\n")
	var nums []int64
	for _, l := range lines {
		var n int64
		if _, err := fmt.Sscanf(l, "line %d", &n); err != nil {
			t.Fatalf("bad line %q in live file", l)
		}
		nums = append(nums, n)
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Fatalf("live file skips from line %d to %d", nums[i-1], nums[i])
		}
	}
	if len(nums) == 0 || nums[0] > after || nums[len(nums)-1] < after+99 {
		t.Errorf("live file holds lines %d..%d; want every line from %d on", nums[0], nums[len(nums)-1], after)
	}
}

func readFileIfAny(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func TestRunRotatesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	writeFile(t, a, strings.Repeat("x", 20))
	writeFile(t, b, "small")
	r := newRotator(t, 10, 3)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, 10*time.Millisecond, func() []string { return []string{a, b, filepath.Join(dir, "missing.log")} })
	}()
	waitFor(t, func() bool { return exists(a + ".1") })
	appendFile(t, b, strings.Repeat("y", 20)) // picked up on a later round
	waitFor(t, func() bool { return exists(b + ".1") })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if readFile(t, a) != "" || readFile(t, b+".1") != "small"+strings.Repeat("y", 20) {
		t.Error("Run did not rotate as Check does")
	}
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
