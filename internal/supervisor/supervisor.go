// Package supervisor runs the replicas the cluster placed on this node:
// it starts them through their driver, restarts them by their policy with
// back-off, checks their health, reports their state, and stops those the
// cluster no longer wants. Replicas outlive the agent: on start the
// supervisor re-attaches to the ones still running instead of starting
// them twice.
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/driver"
	"github.com/herd-cluster/herd/internal/health"
	"github.com/herd-cluster/herd/internal/logfile"
	"github.com/herd-cluster/herd/internal/logging"
)

// Config is what a Supervisor needs.
type Config struct {
	// Node is this node's name.
	Node string
	// Dir holds one directory per replica: its record and its logs.
	Dir string
	// Drivers by name; a replica whose driver is missing fails.
	Drivers map[string]driver.Driver
	// Fetch returns the replicas placed on this node once their index
	// passes index (a blocking query), with the new index.
	Fetch func(ctx context.Context, index uint64) (uint64, []*api.Replica, error)
	// Report sends the state of this node's replicas to the cluster.
	Report func(ctx context.Context, st []api.ReplicaStatus) error
	// StopOnExit stops every replica when Run returns (dev mode and tests);
	// by default replicas keep running and are re-attached by the next
	// agent.
	StopOnExit bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// startupQuiet is how long after start a failure to read this node's
// replicas is expected (the agent is still joining) and logged quietly.
const startupQuiet = 10 * time.Second

// Supervisor runs one node's replicas.
type Supervisor struct {
	cfg    Config
	logger *slog.Logger
	prober *health.Prober
	rot    *logfile.Rotator

	mu      sync.Mutex
	runners map[string]*runner
	changed chan struct{}
	// keep overrides StopOnExit: the replicas stay when Run returns.
	keep atomic.Bool

	usageMu sync.Mutex
	usage   map[string]float64 // CPU millicores by replica
}

// KeepReplicasOnExit makes Run leave the replicas running when it returns,
// whatever StopOnExit says: an agent that crashes does not take its work
// with it. Tests use it to crash an agent.
func (s *Supervisor) KeepReplicasOnExit() { s.keep.Store(true) }

// New returns a Supervisor; Run starts it.
func New(cfg Config) *Supervisor {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	rot, _ := logfile.New(logfile.Config{Logger: cfg.Logger}) // defaults are valid
	return &Supervisor{
		rot:     rot,
		cfg:     cfg,
		logger:  cfg.Logger,
		prober:  health.NewProber(),
		runners: map[string]*runner{},
		changed: make(chan struct{}, 1),
	}
}

// record is what the supervisor keeps on disk for one replica.
type record struct {
	Replica *api.Replica    `json:"replica"`
	State   json.RawMessage `json:"driver_state"`
}

// Run supervises until ctx ends. It re-attaches to the replicas recorded
// on disk first.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	var wg sync.WaitGroup
	rctx, cancelRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if s.cfg.StopOnExit && !s.keep.Load() {
			s.stopAll()
		}
		cancelRunners()
		wg.Wait()
	}()
	s.recover(rctx, &wg)

	wg.Add(3)
	go func() { defer wg.Done(); s.reportLoop(ctx) }()
	go func() { defer wg.Done(); s.usageLoop(ctx) }()
	go func() {
		defer wg.Done()
		s.rot.Run(ctx, time.Second, s.logPaths)
	}()

	var index uint64
	backoff := 100 * time.Millisecond
	// Until the first read succeeds (the agent may still be joining),
	// failures are expected: they are logged at debug level for a while.
	quietUntil, fetched := time.Now().Add(startupQuiet), false
	for ctx.Err() == nil {
		idx, reps, err := s.cfg.Fetch(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !fetched && time.Now().Before(quietUntil) {
				s.logger.Debug("reading this node's replicas (the agent may still be joining)", "err", err)
			} else {
				s.logger.Warn("reading this node's replicas", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		fetched = true
		if idx < index {
			idx = 0 // the index went back (a restored cluster): start over
		}
		index = idx
		s.sync(rctx, &wg, reps)
	}
	return nil
}

// sync brings the local runners in line with the replicas placed here.
func (s *Supervisor) sync(ctx context.Context, wg *sync.WaitGroup, reps []*api.Replica) {
	want := make(map[string]*api.Replica, len(reps))
	for _, r := range reps {
		if r.Node == s.cfg.Node {
			want[r.ID] = r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, rn := range s.runners {
		r, ok := want[id]
		switch {
		case !ok || r.Desired == api.DesiredStop:
			rn.requestStop()
		case r.State == api.ReplicaLost && !rn.alive():
			// Replaced elsewhere while this node was away; do not revive.
			rn.requestStop()
		}
	}
	for id, r := range want {
		if _, ok := s.runners[id]; ok {
			continue
		}
		if r.Desired == api.DesiredStop || r.State == api.ReplicaLost {
			if r.State != api.ReplicaStopped && r.State != api.ReplicaFailed {
				// Nothing runs here; tell the cluster it is stopped.
				s.runners[id] = finished(r, api.ReplicaStopped)
				s.notify()
			}
			continue
		}
		if r.Run == nil {
			continue
		}
		rn := s.newRunner(r)
		s.runners[id] = rn
		wg.Add(1)
		go func() { defer wg.Done(); rn.run(ctx, nil) }()
	}
	// Forget finished runners the cluster has deleted.
	for id, rn := range s.runners {
		if _, ok := want[id]; !ok && rn.finished() {
			delete(s.runners, id)
			_ = os.RemoveAll(s.replicaDir(id))
		}
	}
}

// recover re-attaches to the replicas recorded on disk.
func (s *Supervisor) recover(ctx context.Context, wg *sync.WaitGroup) {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		s.logger.Warn("reading replica records", "err", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.cfg.Dir, e.Name(), "replica.json"))
		if err != nil {
			continue
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil || rec.Replica == nil || rec.Replica.Run == nil {
			s.logger.Warn("unreadable replica record", "replica", e.Name(), "err", err)
			continue
		}
		rn := s.newRunner(rec.Replica)
		h, err := rn.drv.Recover(ctx, rn.task, rec.State)
		if err != nil {
			s.logger.Info("replica did not survive the agent's restart", "replica", rec.Replica.ID, "err", err)
			h = nil
		} else {
			s.logger.Info("re-attached to a running replica", "replica", rec.Replica.ID)
		}
		if rn.drv == nil {
			continue
		}
		s.mu.Lock()
		s.runners[rec.Replica.ID] = rn
		s.mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); rn.run(ctx, h) }()
	}
}

// stopAll stops every replica and waits for them.
func (s *Supervisor) stopAll() {
	s.mu.Lock()
	rs := slices.Collect(maps.Values(s.runners))
	s.mu.Unlock()
	for _, rn := range rs {
		rn.requestStop()
	}
	for _, rn := range rs {
		<-rn.done
	}
}

func (s *Supervisor) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Statuses returns the state of every replica this supervisor knows.
func (s *Supervisor) Statuses() []api.ReplicaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.ReplicaStatus, 0, len(s.runners))
	for _, rn := range s.runners {
		out = append(out, rn.snapshot())
	}
	slices.SortFunc(out, func(a, b api.ReplicaStatus) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// reportLoop sends the replicas' states whenever one changes, at most
// every 50 ms, retrying failed reports.
func (s *Supervisor) reportLoop(ctx context.Context) {
	var last []api.ReplicaStatus
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-retry.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		st := s.Statuses()
		if statusesEqual(st, last) {
			continue
		}
		if err := s.cfg.Report(ctx, st); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("reporting replica states", "err", err)
			}
			retry.Reset(time.Second)
			continue
		}
		last = st
	}
}

func statusesEqual(a, b []api.ReplicaStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.State != y.State || x.Health != y.Health || x.Restarts != y.Restarts ||
			x.CrashLoop != y.CrashLoop || x.Error != y.Error || !x.StartedAt.Equal(y.StartedAt) ||
			!x.HealthySince.Equal(y.HealthySince) || (x.ExitCode == nil) != (y.ExitCode == nil) ||
			(x.ExitCode != nil && *x.ExitCode != *y.ExitCode) {
			return false
		}
	}
	return true
}

func (s *Supervisor) replicaDir(id string) string { return filepath.Join(s.cfg.Dir, id) }

// logPaths lists the live log files of every replica, for rotation.
func (s *Supervisor) logPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.runners {
		dir := filepath.Join(s.replicaDir(id), "logs")
		out = append(out, filepath.Join(dir, "stdout.log"), filepath.Join(dir, "stderr.log"))
	}
	return out
}

// LogFiles returns the paths of a replica's stdout or stderr log files,
// oldest first, for reading; an error if this node has no such replica.
func (s *Supervisor) LogFiles(id, stream string) ([]string, error) {
	if stream != "stdout" && stream != "stderr" {
		return nil, fmt.Errorf("stream %q is not stdout or stderr", stream)
	}
	dir := filepath.Join(s.replicaDir(filepath.Base(id)), "logs")
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("replica %q has no logs on this node: %w", id, errNoReplica)
	}
	files, err := logfile.Files(filepath.Join(dir, stream+".log"))
	if err != nil {
		return nil, fmt.Errorf("replica %q logs: %w", id, err)
	}
	return files, nil
}

// DriverLogs opens the output of a replica whose driver keeps it (docker):
// all of it, then new output while follow is set. It returns an error
// wrapping driver.ErrNoLogs for replicas whose output is in files.
func (s *Supervisor) DriverLogs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	s.mu.Lock()
	rn := s.runners[id]
	s.mu.Unlock()
	if rn == nil || rn.drv == nil {
		return nil, fmt.Errorf("replica %q does not run on this node: %w", id, errNoReplica)
	}
	var rec record
	if data, err := os.ReadFile(filepath.Join(rn.dir, "replica.json")); err == nil {
		_ = json.Unmarshal(data, &rec) // a missing state: the driver finds it by name
	}
	return rn.drv.Logs(ctx, rn.task, rec.State, follow)
}

var errNoReplica = errors.New("no such replica")

// IsNoReplica reports whether err means the replica is not on this node.
func IsNoReplica(err error) bool { return errors.Is(err, errNoReplica) }
