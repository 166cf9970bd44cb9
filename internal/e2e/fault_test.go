//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// pidOf is the host PID of a container's first process, for nsenter.
func pidOf(ctx context.Context, n node) (string, error) {
	return docker(ctx, "inspect", "-f", "{{.State.Pid}}", container(n))
}

// inNetns runs a command in a container's network namespace from the
// host (the image has no tools of its own).
func inNetns(ctx context.Context, n node, args ...string) error {
	pid, err := pidOf(ctx, n)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"-t", pid, "-n"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nsenter %s %s: %w: %s", n.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// partition drops every packet between n and each of peers, both ways,
// by firewall rules in n's network namespace.
func partition(ctx context.Context, n node, peers ...node) error {
	for _, p := range peers {
		if err := inNetns(ctx, n, "iptables", "-I", "INPUT", "-s", p.ip, "-j", "DROP"); err != nil {
			return err
		}
		if err := inNetns(ctx, n, "iptables", "-I", "OUTPUT", "-d", p.ip, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// heal removes n's partition rules.
func heal(ctx context.Context, n node) error {
	if err := inNetns(ctx, n, "iptables", "-F", "INPUT"); err != nil {
		return err
	}
	return inNetns(ctx, n, "iptables", "-F", "OUTPUT")
}

// TestIsolateLeader cuts the leader off from the other two servers for
// 8 s (the clients still reach it), three times: the majority elects a
// new leader; the old one must not acknowledge a write or serve a stale
// read meanwhile (the register history stays linearizable), and rejoins
// as a follower.
func TestIsolateLeader(t *testing.T) {
	scenario(t, "isolate the leader from the majority", func(r *run) {
		r.cutLeaderRounds(3, func(victim node, others []node) error { return partition(r.ctx, victim, others...) })
	})
}

// cutLeaderRounds, rounds times: picks the leader, cuts it off from the
// other servers with cut, measures the failover, heals it after 8 s and
// waits for it to be alive again.
func (r *run) cutLeaderRounds(rounds int, cut func(victim node, others []node) error) {
	r.t.Helper()
	for range rounds {
		time.Sleep(3 * time.Second)
		victim := r.leader()
		var others []node
		for _, n := range nodes {
			if n.server && n != victim {
				others = append(others, n)
			}
		}
		if err := cut(victim, others); err != nil {
			r.t.Fatal(err)
		}
		r.failover(victim, time.Now())
		time.Sleep(8 * time.Second)
		if err := heal(r.ctx, victim); err != nil {
			r.t.Fatal(err)
		}
		r.alive(victim)
	}
}

// TestSlowLossyFollower gives one follower a slow, lossy link (200 ms ±
// 50 ms and 5% loss on what it sends: netem on its interface, or on a
// kernel without netem the same by an NFQUEUE this test serves) for 20 s
// under load: the cluster goes on, nothing is lost, reads stay
// linearizable.
func TestSlowLossyFollower(t *testing.T) {
	scenario(t, "200±50 ms, 5% loss on a follower", func(r *run) {
		time.Sleep(3 * time.Second)
		leader := r.leader()
		victim := follower(leader)
		undo := degrade(r, victim)
		time.Sleep(20 * time.Second)
		undo()
		r.alive(victim)
		time.Sleep(3 * time.Second)
	})
}

// netemAvailable reports whether this kernel has the netem qdisc (this
// machine's kernel, for one, does not ship sch_netem): it tries one on
// the loopback of a throw-away network namespace.
func netemAvailable() bool {
	ns := fmt.Sprintf("herd-netem-probe-%d", os.Getpid())
	if exec.Command("ip", "netns", "add", ns).Run() != nil {
		return false
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	return exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms").Run() == nil
}

// degrade slows and thins n's link and returns how to undo it.
func degrade(r *run, n node) func() {
	r.t.Helper()
	if netemAvailable() {
		if err := inNetns(r.ctx, n, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "200ms", "50ms", "loss", "5%"); err != nil {
			r.t.Fatal(err)
		}
		return func() {
			if err := inNetns(r.ctx, n, "tc", "qdisc", "del", "dev", "eth0", "root"); err != nil {
				r.t.Error(err)
			}
		}
	}
	// No netem here: the same by a queue this process serves.
	pid, err := pidOf(r.ctx, n)
	if err != nil {
		r.t.Fatal(err)
	}
	const queue = 7
	sh, err := openShaper(pid, queue, 200*time.Millisecond, 50*time.Millisecond, 0.05)
	if err != nil {
		r.t.Fatal(err)
	}
	rule := []string{"OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", fmt.Sprint(queue), "--queue-bypass"}
	if err := inNetns(r.ctx, n, append([]string{"iptables", "-I"}, rule...)...); err != nil {
		sh.Close()
		r.t.Fatal(err)
	}
	// The link must really be slow: a TCP connect to n waits for its
	// SYN-ACK, which now leaves n 150 to 250 ms late.
	var rtts []time.Duration
	for range 5 {
		start := time.Now()
		conn, err := net.DialTimeout("tcp", n.ip+":7700", 3*time.Second)
		if err == nil {
			rtts = append(rtts, time.Since(start))
			conn.Close()
		}
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	if len(rtts) < 3 || rtts[len(rtts)/2] < 140*time.Millisecond {
		r.t.Errorf("the shaped link is not slow: connect times %v", rtts)
	} else {
		r.t.Logf("%s's link shaped in user space (no netem in this kernel): connect times %v", n.name, rtts)
	}
	return func() {
		if err := inNetns(r.ctx, n, append([]string{"iptables", "-D"}, rule...)...); err != nil {
			r.t.Error(err)
		}
		delayed, dropped := sh.Close()
		r.t.Logf("%s's link: %d packets delayed, %d dropped", n.name, delayed, dropped)
	}
}

// TestRollingRestart restarts every agent in turn (a graceful stop, then
// a start from its data), servers and clients, under load.
func TestRollingRestart(t *testing.T) {
	scenario(t, "rolling restart of all five", func(r *run) {
		for _, n := range nodes {
			time.Sleep(3 * time.Second)
			if _, err := docker(r.ctx, "restart", "-t", "15", container(n)); err != nil {
				r.t.Fatal(err)
			}
			r.alive(n)
		}
		time.Sleep(3 * time.Second)
	})
}
