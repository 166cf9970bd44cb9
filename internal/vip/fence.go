package vip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A holder must have removed its address by its fence time even if the
// agent cannot act: killed (SIGKILL), frozen (SIGSTOP) or starved. The
// agent therefore hands each fence time to a watchdog: a child process
// (the same binary, started with FenceEnv set) that removes the address
// when the time passes, and removes every address it watches when the
// agent's end of the pipe closes, which is what the agent's death looks
// like from there. A frozen agent's child keeps running; a killed agent's
// child is not killed with it.

// FenceEnv, set to "1" in a process's environment, makes it a fence
// watchdog: the binary's main calls FenceMain first thing.
const FenceEnv = "HERD_VIP_FENCE"

// Fence is where a holder registers the time by which an address must be
// gone.
type Fence interface {
	// Hold (re)sets when VIP name's address on ifname must be gone.
	Hold(name, ifname string, p netip.Prefix, until time.Time) error
	// Drop forgets VIP name: its holder removed the address itself.
	Drop(name string) error
}

// ProcessFence is a Fence served by a watchdog child process.
type ProcessFence struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	w   io.WriteCloser
	err error
}

// StartProcessFence starts the watchdog: exe (normally os.Executable(),
// whose main called RunFenceIfChild) with FenceEnv set, changing addresses in the network namespace at netns
// ("" for its own). Its logs go to logw.
func StartProcessFence(exe, netns string, logw io.Writer) (*ProcessFence, error) {
	if !canFence.Load() {
		return nil, errors.New("this binary does not run vip.RunFenceIfChild first, so it cannot be the watchdog")
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), FenceEnv+"=1", "HERD_VIP_FENCE_NETNS="+netns)
	cmd.Stdout, cmd.Stderr = logw, logw
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("vip fence: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the vip fence watchdog: %w", err)
	}
	return &ProcessFence{cmd: cmd, w: w}, nil
}

func (f *ProcessFence) send(line string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if _, err := io.WriteString(f.w, line); err != nil {
		f.err = fmt.Errorf("vip fence watchdog gone: %w", err)
		return f.err
	}
	return nil
}

// Hold tells the watchdog when name's address must be gone.
func (f *ProcessFence) Hold(name, ifname string, p netip.Prefix, until time.Time) error {
	deadline := monoNow() + int64(time.Until(until))
	return f.send(fmt.Sprintf("hold %s %s %s %d\n", name, ifname, p, deadline))
}

// Drop tells the watchdog to forget name.
func (f *ProcessFence) Drop(name string) error { return f.send("drop " + name + "\n") }

// Close ends the watchdog the way the agent's death would: it removes
// every address it still watches, and exits.
func (f *ProcessFence) Close() error {
	f.mu.Lock()
	_ = f.w.Close()
	f.err = errors.New("vip fence watchdog closed")
	f.mu.Unlock()
	return f.cmd.Wait()
}

// fenceEntry is one watched address.
type fenceEntry struct {
	ifname   string
	pfx      netip.Prefix
	deadline int64 // CLOCK_MONOTONIC nanoseconds
}

// FenceMain runs the watchdog: it reads "hold NAME IFACE PREFIX DEADLINE"
// and "drop NAME" lines from r, removes each address whose deadline (in
// CLOCK_MONOTONIC nanoseconds) passes, and at the end of r removes every
// address still watched. It returns when r ends.
func FenceMain(r io.Reader, net Net, log *slog.Logger) {
	var mu sync.Mutex
	watched := map[string]fenceEntry{}
	remove := func(name string, e fenceEntry, why string) {
		if err := net.Remove(e.ifname, e.pfx); err != nil {
			log.Error("vip fence: removing an address", "vip", name, "err", err)
			return
		}
		log.Warn("vip fence: removed an address", "vip", name, "address", e.pfx, "why", why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // the clock
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
			now := monoNow()
			mu.Lock()
			for name, e := range watched {
				if now >= e.deadline {
					delete(watched, name)
					remove(name, e, "its lease may run out: the agent did not renew it in time")
				}
			}
			mu.Unlock()
		}
	})
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 5 && f[0] == "hold":
			pfx, err1 := netip.ParsePrefix(f[3])
			deadline, err2 := strconv.ParseInt(f[4], 10, 64)
			if err1 != nil || err2 != nil {
				log.Error("vip fence: bad line", "line", sc.Text())
				continue
			}
			mu.Lock()
			watched[f[1]] = fenceEntry{ifname: f[2], pfx: pfx, deadline: deadline}
			mu.Unlock()
		case len(f) == 2 && f[0] == "drop":
			mu.Lock()
			delete(watched, f[1])
			mu.Unlock()
		default:
			log.Error("vip fence: bad line", "line", sc.Text())
		}
	}
	cancel()
	wg.Wait()
	for name, e := range watched {
		remove(name, e, "the agent is gone")
	}
}
