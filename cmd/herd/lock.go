package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

// Session TTL bounds the servers accept.
const (
	minLockTTL = time.Second
	maxLockTTL = 24 * time.Hour
)

func newLockCmd(g *globals) *cobra.Command {
	var ttl, timeout, killTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "lock PREFIX -- CMD [ARGS...]",
		Short: "Run a command while holding a cluster-wide lock",
		Long: `Run CMD while holding the lock PREFIX/.lock, so that at most one "herd lock"
on the same PREFIX runs its command at a time, anywhere in the cluster.

herd lock creates a session (--ttl, renewed every TTL/3), waits until it can
take the lock (at most --timeout; 0 waits forever), then runs CMD with:
  HERD_LOCK_INDEX  the fencing token: it rises with every acquisition, so a
                   system the command writes to can refuse stale holders
  HERD_LOCK_KEY    the lock's key
  HERD_SESSION     the session ID
When CMD exits, the lock is released, the session destroyed, and herd lock
exits with CMD's exit code (128+N if CMD died of signal N).

If the lock is lost while CMD runs (the session expired or could not be
renewed within its TTL, or the key was released or taken by someone else),
CMD is sent SIGTERM, then SIGKILL after --kill-timeout, and herd lock exits 1.
CMD runs in its own process group so that all of its processes are stopped;
SIGINT and SIGTERM sent to herd lock are forwarded to that group. CMD gets
herd lock's standard input unless that is a terminal.

Put "--" before CMD so that CMD's own flags are not taken as herd's.

Examples:
  herd lock jobs/backup -- /usr/local/bin/backup.sh --full
  herd lock --timeout 30s --ttl 15s deploy/web -- sh -c 'deploy --token "$HERD_LOCK_INDEX"'`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch dash := cmd.ArgsLenAtDash(); {
			case dash == 0:
				return usagef("missing PREFIX before --")
			case dash > 1:
				return usagef("lock takes exactly one PREFIX before --, got %d", dash)
			}
			if ttl < minLockTTL || ttl > maxLockTTL {
				return usagef("--ttl %s must be between %s and %s", ttl, minLockTTL, maxLockTTL)
			}
			if timeout < 0 || killTimeout < 0 {
				return usagef("--timeout and --kill-timeout must not be negative")
			}
			prefix := strings.TrimSuffix(args[0], "/")
			if prefix == "" {
				return usagef("PREFIX must not be empty")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			l := &locker{
				c: c, key: prefix + "/.lock", ttl: ttl, timeout: timeout, killTimeout: killTimeout,
				stdin: cmd.InOrStdin(), stdout: cmd.OutOrStdout(), stderr: syncWriter(cmd.ErrOrStderr()),
				lost: make(chan struct{}),
			}
			return l.run(cmd.Context(), args[1:])
		},
	}
	f := cmd.Flags()
	f.DurationVar(&ttl, "ttl", 10*time.Second, "session TTL: how long the lock outlives herd lock if it dies without releasing it")
	f.DurationVar(&timeout, "timeout", 0, "give up (exit 1) if the lock is not acquired within this time; 0 waits forever")
	f.DurationVar(&killTimeout, "kill-timeout", 5*time.Second, "after losing the lock, wait this long after SIGTERM before sending SIGKILL")
	return cmd
}

// locker runs one "herd lock".
type locker struct {
	c                         *api.Client
	key                       string
	ttl, timeout, killTimeout time.Duration
	stdin                     io.Reader
	stdout, stderr            io.Writer

	session string
	held    bool

	// lost is closed (once, with lostWhy set before) when the session or
	// the lock is known to be gone.
	lost     chan struct{}
	lostOnce sync.Once
	lostWhy  string
}

func (l *locker) markLost(format string, args ...any) {
	l.lostOnce.Do(func() {
		l.lostWhy = fmt.Sprintf(format, args...)
		close(l.lost)
	})
}

func (l *locker) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

func (l *locker) run(ctx context.Context, argv []string) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	id, err := l.c.SessionCreate(ctx, &api.SessionEntry{
		Name: "herd lock", TTL: l.ttl.String(), Behavior: api.SessionBehaviorRelease, LockDelay: 0,
	})
	if err != nil {
		return fmt.Errorf("creating a session: %w", err)
	}
	l.session = id

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.renewLoop(bg)
	}()
	defer func() {
		stopBG()
		wg.Wait()
		l.cleanup()
	}()

	token, err := l.wait(ctx, sigs)
	if err != nil {
		return err
	}
	l.held = true
	fmt.Fprintf(l.stderr, "lock acquired (fencing token %d)\n", token)

	wg.Add(1)
	go func() {
		defer wg.Done()
		l.watchLoop(bg, token)
	}()
	return l.runChild(argv, token, sigs)
}

// cleanup releases the lock if it is still held and destroys the session
// (which would release it too).
func (l *locker) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if l.held && !l.isLost() {
		if _, err := l.c.KVRelease(ctx, l.key, l.session); err != nil {
			fmt.Fprintf(l.stderr, "warning: releasing lock %s: %v\n", l.key, err)
		}
	}
	if err := l.c.SessionDestroy(ctx, l.session); err != nil {
		fmt.Fprintf(l.stderr, "warning: destroying session %s: %v (it expires after its TTL of %s)\n", l.session, err, l.ttl)
	}
}

// wait acquires the lock, giving up on --timeout, on SIGINT/SIGTERM or
// when the session is lost.
func (l *locker) wait(ctx context.Context, sigs <-chan os.Signal) (uint64, error) {
	wctx, cancel := context.WithCancel(ctx)
	if l.timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, l.timeout)
	}
	defer cancel()
	gotSig := make(chan os.Signal, 1)
	done, watcherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case s := <-sigs:
			gotSig <- s
			cancel()
		case <-l.lost:
			cancel()
		case <-done:
		}
	}()
	token, err := l.acquire(wctx)
	close(done)
	<-watcherDone
	select {
	case s := <-gotSig:
		return 0, fmt.Errorf("interrupted (%v) while waiting for lock %s", s, l.key)
	default:
	}
	if l.isLost() {
		return 0, fmt.Errorf("gave up waiting for lock %s: %s", l.key, l.lostWhy)
	}
	if err != nil {
		if errors.Is(wctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return 0, fmt.Errorf("timed out after %s waiting for lock %s", l.timeout, l.key)
		}
		return 0, err
	}
	return token, nil
}

// acquire tries to take the lock until it succeeds or ctx ends. While
// another session holds it, it waits for the key to change with blocking
// reads instead of polling.
func (l *locker) acquire(ctx context.Context) (uint64, error) {
	host, _ := os.Hostname()
	value := []byte(fmt.Sprintf("%s/%d", host, os.Getpid()))
	holder := ""
	failures, misses := 0, 0
	for {
		ok, token, err := l.c.KVAcquire(ctx, l.key, l.session, value)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		switch {
		case err != nil && api.IsNotFound(err):
			l.markLost("session %s no longer exists", l.session)
			return 0, err
		case err != nil:
			failures++
			fmt.Fprintf(l.stderr, "warning: acquiring lock %s: %v (retrying)\n", l.key, err)
			if !sleepCtx(ctx, backoff(failures)) {
				return 0, ctx.Err()
			}
			continue
		case ok:
			return token, nil
		}
		failures = 0
		blocked, err := l.waitFree(ctx, &holder)
		if err != nil {
			return 0, err
		}
		if blocked {
			misses = 0
			continue
		}
		// The key looked free, yet acquiring failed: the previous holder's
		// lock delay, or another waiter won. Back off a little.
		misses++
		if !sleepCtx(ctx, min(backoff(misses), time.Second)) {
			return 0, ctx.Err()
		}
	}
}

// waitFree returns once the lock key has no holder, reporting whether it
// had to wait for that.
func (l *locker) waitFree(ctx context.Context, holder *string) (bool, error) {
	var index uint64 // 0: the first read does not block
	failures := 0
	for {
		var q *api.QueryOptions
		if index > 0 {
			q = &api.QueryOptions{WaitIndex: index}
		}
		pair, meta, err := l.c.KVGet(ctx, l.key, q)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			failures++
			fmt.Fprintf(l.stderr, "warning: reading lock %s: %v (retrying)\n", l.key, err)
			if !sleepCtx(ctx, backoff(failures)) {
				return false, ctx.Err()
			}
			continue
		}
		failures = 0
		if pair == nil || pair.Session == "" {
			return index > 0, nil
		}
		if pair.Session != *holder {
			*holder = pair.Session
			fmt.Fprintf(l.stderr, "waiting for lock %s held by session %s\n", l.key, pair.Session)
		}
		index = nextIndex(max(index, 1), meta)
	}
}

// renewLoop renews the session every TTL/3 until ctx ends. The session is
// lost when the agent says it is gone, or when no renewal succeeded for a
// whole TTL (the servers may have expired it by then).
func (l *locker) renewLoop(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		err := l.c.SessionRenew(rctx, l.session)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			lastOK = sent
		case api.IsNotFound(err):
			l.markLost("session %s expired or was destroyed", l.session)
			return
		case time.Since(lastOK) >= l.ttl:
			l.markLost("session %s could not be renewed within its TTL of %s: %v", l.session, l.ttl, err)
			return
		default:
			fmt.Fprintf(l.stderr, "warning: renewing session %s: %v (retrying)\n", l.session, err)
		}
	}
}

// watchLoop watches the lock key while the lock is held: if it is deleted,
// released or held by another session, the lock is lost.
func (l *locker) watchLoop(ctx context.Context, index uint64) {
	failures := 0
	for {
		pair, meta, err := l.c.KVGet(ctx, l.key, &api.QueryOptions{WaitIndex: max(index, 1)})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The renewals decide whether an unreachable agent means the
			// session is gone.
			failures++
			if !sleepCtx(ctx, backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		switch {
		case pair == nil:
			l.markLost("lock key %s was deleted", l.key)
			return
		case pair.Session == "":
			l.markLost("lock %s was released by someone else", l.key)
			return
		case pair.Session != l.session:
			l.markLost("lock %s is now held by session %s", l.key, pair.Session)
			return
		}
		index = nextIndex(index, meta)
	}
}

// runChild runs CMD while the lock is held, forwarding signals, and stops
// it if the lock is lost.
func (l *locker) runChild(argv []string, token uint64, sigs <-chan os.Signal) error {
	child := exec.Command(argv[0], argv[1:]...)
	child.Env = append(os.Environ(),
		"HERD_LOCK_INDEX="+strconv.FormatUint(token, 10),
		"HERD_LOCK_KEY="+l.key,
		"HERD_SESSION="+l.session,
	)
	child.Stdin = childStdin(l.stdin)
	child.Stdout, child.Stderr = l.stdout, l.stderr
	// Output pipes that a left-over grandchild keeps open must not keep
	// herd lock, and with it the lock, forever.
	child.WaitDelay = time.Second
	setOwnProcessGroup(child)
	if err := child.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	for {
		select {
		case err := <-exited:
			return childResult(child, err)
		case s := <-sigs:
			signalChild(child, s)
		case <-l.lost:
			fmt.Fprintf(l.stderr, "lock lost: %s; stopping %s\n", l.lostWhy, argv[0])
			signalChild(child, syscall.SIGTERM)
			t := time.NewTimer(l.killTimeout)
			select {
			case <-exited:
			case <-t.C:
				fmt.Fprintf(l.stderr, "%s did not exit %s after SIGTERM; killing it\n", argv[0], l.killTimeout)
				signalChild(child, syscall.SIGKILL)
				<-exited
			case <-sigs:
				signalChild(child, syscall.SIGKILL)
				<-exited
			}
			t.Stop()
			return fmt.Errorf("lock %s was lost while %s ran: %s", l.key, argv[0], l.lostWhy)
		}
	}
}

// childResult turns the child's end into herd lock's: nil for exit 0,
// else an exitError with the child's code.
func childResult(child *exec.Cmd, err error) error {
	ps := child.ProcessState
	if ps == nil {
		return fmt.Errorf("waiting for %s: %w", child.Path, err)
	}
	if code := exitCode(ps); code != 0 {
		return exitError{code}
	}
	return nil
}
