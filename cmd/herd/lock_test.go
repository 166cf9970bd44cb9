package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

func needShell(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("herd lock tests use sh")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// lockFree checks that the lock key is left without a holder and the
// session is gone.
func lockFree(t *testing.T, c *api.Client, key, stderr string) {
	t.Helper()
	ctx := context.Background()
	pair, _, err := c.KVGet(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pair != nil && pair.Session != "" {
		t.Fatalf("lock %s is still held by session %s", key, pair.Session)
	}
	if i := strings.Index(stderr, "HERD_SESSION="); i >= 0 {
		id := strings.Fields(stderr[i+len("HERD_SESSION="):])[0]
		se, _, err := c.SessionInfo(ctx, id, nil)
		if err != nil || se != nil {
			t.Fatalf("session %s still exists: %+v %v", id, se, err)
		}
	}
}

func TestLockRunsChildWithToken(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	file := filepath.Join(t.TempDir(), "token")
	r := cli(t, n, "lock", "jobs/backup", "--", "sh", "-c",
		`echo "$HERD_LOCK_INDEX" > "$0"; echo "key=$HERD_LOCK_KEY" >&2; echo "HERD_SESSION=$HERD_SESSION" >&2; echo out`, file)
	wantCode(t, r, 0)
	token, err := strconv.ParseUint(strings.TrimSpace(readFile(t, file)), 10, 64)
	if err != nil || token == 0 {
		t.Fatalf("token file holds %q: want a positive number", readFile(t, file))
	}
	if r.stdout != "out\n" {
		t.Fatalf("the child's stdout came out as %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr,
		"key=jobs/backup/.lock",
		"lock acquired (fencing token "+strconv.FormatUint(token, 10)+")")
	lockFree(t, n.Client(t), "jobs/backup/.lock", r.stderr)
}

func TestLockExitCode(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	r := cli(t, n, "lock", "jobs/x", "--", "sh", "-c", `echo "HERD_SESSION=$HERD_SESSION" >&2; exit 3`)
	wantCode(t, r, 3)
	if strings.Contains(r.stderr, "Error:") {
		t.Fatalf("a failing child is not herd's error:\n%s", r.stderr)
	}
	lockFree(t, n.Client(t), "jobs/x/.lock", r.stderr)

	r = cli(t, n, "lock", "jobs/x", "--", "sh", "-c", `kill -KILL $$`)
	wantCode(t, r, 128+9)

	r = cli(t, n, "lock", "jobs/x", "--", filepath.Join(t.TempDir(), "no-such-command"))
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "Error: starting")
}

func TestLockMutualExclusion(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 3)
	file := filepath.Join(t.TempDir(), "log")
	const runs = 3
	done := make(chan result, runs)
	for i := range runs {
		// Each run talks to a different server.
		n := cl.Nodes[i%len(cl.Nodes)]
		go func() {
			done <- herd(t, "--address", n.Agent().APIAddr(), "lock", "shared", "--", "sh", "-c",
				`echo "start $HERD_LOCK_INDEX" >> "$0"; sleep 0.3; echo "end $HERD_LOCK_INDEX" >> "$0"`, file)
		}()
	}
	waited := false
	for range runs {
		r := waitResult(t, done)
		wantCode(t, r, 0)
		waited = waited || strings.Contains(r.stderr, "waiting for lock shared/.lock held by session ")
	}
	if !waited {
		t.Fatal("no run reported waiting for the lock: the runs did not contend")
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, file)), "\n")
	if len(lines) != 2*runs {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), 2*runs, strings.Join(lines, "\n"))
	}
	var last uint64
	for i := 0; i < len(lines); i += 2 {
		start, end := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if start[0] != "start" || end[0] != "end" || start[1] != end[1] {
			t.Fatalf("children overlapped:\n%s", strings.Join(lines, "\n"))
		}
		token, err := strconv.ParseUint(start[1], 10, 64)
		if err != nil || token <= last {
			t.Fatalf("token %q does not rise above the previous holder's %d:\n%s", start[1], last, strings.Join(lines, "\n"))
		}
		last = token
	}
}

func TestLockLost(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	dir := t.TempDir()
	started, log := filepath.Join(dir, "started"), filepath.Join(dir, "log")
	done := runAsync(t, "--address", n.Agent().APIAddr(), "lock", "--kill-timeout", "2s", "jobs/lost", "--", "sh", "-c",
		`echo start >> "$1"; touch "$0"; sleep 5; echo finished >> "$1"`, started, log)
	testcluster.WaitFor(t, 15*time.Second, "the child to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	// Someone else breaks the lock: the key is deleted.
	if _, err := c.KVDelete(context.Background(), "jobs/lost/.lock", false); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	r := waitResult(t, done)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "lock lost: lock key jobs/lost/.lock was deleted", "Error: lock jobs/lost/.lock was lost")
	if d := time.Since(begin); d > 4*time.Second {
		t.Fatalf("herd lock took %s to stop the child", d)
	}
	time.Sleep(100 * time.Millisecond)
	if got := readFile(t, log); got != "start\n" {
		t.Fatalf("the child went on after losing the lock: %q", got)
	}
}

func TestLockSessionDestroyed(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	// The child ignores SIGTERM: it must be killed after --kill-timeout.
	done := runAsync(t, "--address", n.Agent().APIAddr(), "lock", "--kill-timeout", "300ms", "jobs/s", "--", "sh", "-c",
		`trap "" TERM; echo "$HERD_SESSION" > "$0.tmp"; mv "$0.tmp" "$0"; sleep 30`, started)
	testcluster.WaitFor(t, 15*time.Second, "the child to start", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	id := strings.TrimSpace(readFile(t, started))
	if err := c.SessionDestroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := waitResult(t, done)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "lock lost", "killing it", "was lost")
}

func TestLockTimeout(t *testing.T) {
	needShell(t)
	t.Parallel()
	cl := startCluster(t, 1)
	n := cl.Nodes[0]
	c := n.Client(t)
	ctx := context.Background()
	id, err := c.SessionCreate(ctx, &api.SessionEntry{Name: "holder", TTL: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.KVAcquire(ctx, "busy/.lock", id, []byte("holder")); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	file := filepath.Join(t.TempDir(), "ran")
	r := cli(t, n, "lock", "--timeout", "500ms", "busy", "--", "touch", file)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "waiting for lock busy/.lock held by session "+id, "timed out after 500ms")
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the command ran without the lock")
	}

	// Once the holder lets go, a waiting herd lock gets the lock.
	before := kvGets(t, c)
	done := runAsync(t, "--address", n.Agent().APIAddr(), "lock", "busy/", "--", "touch", file)
	testcluster.WaitFor(t, 15*time.Second, "herd lock to block on the lock key", func() bool {
		return kvGets(t, c) >= before+2
	})
	if err := c.SessionDestroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	r = waitResult(t, done)
	wantCode(t, r, 0)
	if _, err := os.Stat(file); err != nil {
		t.Fatal("the command did not run once the lock was free")
	}
}
