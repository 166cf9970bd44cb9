package supervisor

import (
	"context"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/driver"
)

// usageInterval is how often the supervisor samples its replicas' CPU.
const usageInterval = 2 * time.Second

// usageLoop samples the CPU use of the running replicas until ctx ends.
func (s *Supervisor) usageLoop(ctx context.Context) {
	type sample struct {
		h    driver.Handle
		used time.Duration
		at   time.Time
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
		live := make(map[string]driver.Handle, len(s.runners))
		for id, rn := range s.runners {
			rn.mu.Lock()
			if rn.live != nil {
				live[id] = rn.live
			}
			rn.mu.Unlock()
		}
		s.mu.Unlock()
		usage := make(map[string]float64, len(live))
		next := make(map[string]sample, len(live))
		for id, h := range live {
			used, ok := h.CPUTime()
			if !ok {
				continue
			}
			// A restarted replica has a new handle: its first sample only
			// starts the count.
			if prev, ok := last[id]; ok && prev.h == h && used >= prev.used {
				usage[id] = float64(used-prev.used) / float64(now.Sub(prev.at)) * 1000
			}
			next[id] = sample{h: h, used: used, at: now}
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
