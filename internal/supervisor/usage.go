package supervisor

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/herd-cluster/herd/api"
)

// clockTicks is the kernel's USER_HZ, the unit of CPU times in
// /proc/PID/stat (100 on every Linux herd runs on).
const clockTicks = 100

// usageInterval is how often the supervisor samples its replicas' CPU.
const usageInterval = 2 * time.Second

// cpuTicks returns a process's CPU time so far, its own and its reaped
// children's, in clock ticks; ok is false when it cannot be read.
func cpuTicks(pid int) (ticks uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which may hold spaces: state is the
	// first; utime, stime, cutime, cstime are fields 14-17 of the line.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, false
	}
	for _, s := range f[11:15] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return ticks, true
}

// usageLoop samples the CPU use of the replicas until ctx ends.
func (s *Supervisor) usageLoop(ctx context.Context) {
	type sample struct {
		pid   int
		ticks uint64
		at    time.Time
	}
	last := map[string]sample{}
	t := time.NewTicker(usageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		s.mu.Lock()
		pids := make(map[string]int, len(s.runners))
		for id, rn := range s.runners {
			rn.mu.Lock()
			if rn.pid > 0 {
				pids[id] = rn.pid
			}
			rn.mu.Unlock()
		}
		s.mu.Unlock()
		usage := make(map[string]float64, len(pids))
		next := make(map[string]sample, len(pids))
		for id, pid := range pids {
			ticks, ok := cpuTicks(pid)
			if !ok {
				continue
			}
			if prev, ok := last[id]; ok && prev.pid == pid && ticks >= prev.ticks {
				secs := now.Sub(prev.at).Seconds()
				usage[id] = float64(ticks-prev.ticks) / clockTicks / secs * 1000
			}
			next[id] = sample{pid: pid, ticks: ticks, at: now}
		}
		last = next
		s.usageMu.Lock()
		s.usage = usage
		s.usageMu.Unlock()
	}
}

// Usage returns what each running replica used over the last sample
// (replicas without a figure are listed with 0).
func (s *Supervisor) Usage() []api.ReplicaUsage {
	s.usageMu.Lock()
	u := s.usage
	s.usageMu.Unlock()
	out := []api.ReplicaUsage{}
	for _, st := range s.Statuses() {
		if st.State == api.ReplicaRunning || st.State == api.ReplicaStarting {
			out = append(out, api.ReplicaUsage{ID: st.ID, CPU: u[st.ID]})
		}
	}
	return out
}
