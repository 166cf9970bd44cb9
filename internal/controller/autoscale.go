package controller

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/spec"
)

// DefaultAutoscaleInterval is how often the autoscaler looks at the load.
const DefaultAutoscaleInterval = 5 * time.Second

// Metrics is where the autoscaler reads the load: every live agent's
// gateway (request rates per backend) and supervisor (CPU per replica).
type Metrics interface {
	// Gateways returns every live agent's gateway view.
	Gateways(ctx context.Context) ([][]api.GatewayService, error)
	// ReplicaCPU returns the CPU use, in millicores, of every replica the
	// live agents run, by replica ID.
	ReplicaCPU(ctx context.Context) (map[string]float64, error)
}

// AutoscaleConfig tunes an Autoscaler.
type AutoscaleConfig struct {
	// Interval: see DefaultAutoscaleInterval.
	Interval time.Duration
	Logger   *slog.Logger
}

// Autoscaler changes the replica count of services with an autoscale
// section, through the same service writes an operator makes, so the
// controller then places or stops replicas as for any scale.
type Autoscaler struct {
	cfg     AutoscaleConfig
	leader  Leader
	metrics Metrics
	logger  *slog.Logger

	mu sync.Mutex
	// recs holds each service's recent recommendations, for the
	// stabilization window.
	recs map[string][]recommendation
}

type recommendation struct {
	at       time.Time
	replicas int
}

// NewAutoscaler returns an Autoscaler.
func NewAutoscaler(cfg AutoscaleConfig, l Leader, m Metrics) *Autoscaler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultAutoscaleInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	return &Autoscaler{cfg: cfg, leader: l, metrics: m, logger: cfg.Logger, recs: map[string][]recommendation{}}
}

// Run scales every interval until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.Step(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.logger.Warn("autoscaling", "err", err)
		}
	}
}

// Step looks at the load once and scales the services that need it.
func (a *Autoscaler) Step(ctx context.Context, now time.Time) error {
	_, services, err := a.leader.Store().ServiceList(nil)
	if err != nil {
		return err
	}
	var scaled []*api.ServiceEntry
	for _, s := range services {
		if s.Run != nil && s.Run.Autoscale != nil {
			scaled = append(scaled, s)
		}
	}
	if len(scaled) == 0 {
		return nil
	}
	var rps map[string]float64
	var cpu map[string]float64
	for _, s := range scaled {
		as := s.Run.Autoscale
		if as.TargetRPSPerReplica > 0 && rps == nil {
			gws, err := a.metrics.Gateways(ctx)
			if err != nil {
				return fmt.Errorf("reading gateway rates: %w", err)
			}
			rps = serviceRates(gws)
		}
		if as.TargetCPU > 0 && cpu == nil {
			if cpu, err = a.metrics.ReplicaCPU(ctx); err != nil {
				return fmt.Errorf("reading replica CPU: %w", err)
			}
		}
	}
	for _, s := range scaled {
		if err := a.scale(ctx, s, rps, cpu, now); err != nil {
			return err
		}
	}
	return nil
}

// serviceRates sums the request rates of every gateway by service.
func serviceRates(gws [][]api.GatewayService) map[string]float64 {
	out := map[string]float64{}
	for _, gw := range gws {
		for _, s := range gw {
			for _, b := range s.Backends {
				out[s.Name] += b.RatePerSecond
			}
		}
	}
	return out
}

// Recommend is the replica count a load asks for: the load divided by the
// target per replica, rounded up, within min..max. With a CPU target,
// load is the replicas' total CPU in millicores and perReplica the
// reserved CPU times the target percentage.
func Recommend(load, perReplica float64, lo, hi int) int {
	n := lo
	if perReplica > 0 && load > 0 {
		n = int(math.Ceil(load/perReplica - 1e-9))
	}
	return min(max(n, lo), hi)
}

func (a *Autoscaler) scale(ctx context.Context, s *api.ServiceEntry, rps, cpu map[string]float64, now time.Time) error {
	run := spec.RunDefaults(s.Run)
	as := run.Autoscale
	cur := *run.Replicas
	var want int
	var why string
	switch {
	case as.TargetRPSPerReplica > 0:
		load := rps[s.Name]
		want = Recommend(load, as.TargetRPSPerReplica, as.Min, as.Max)
		why = fmt.Sprintf("%.1f req/s over a target of %.1f per replica", load, as.TargetRPSPerReplica)
	default:
		_, reps, err := a.leader.Store().Replicas(nil, s.Name, "")
		if err != nil {
			return err
		}
		var total float64
		for _, r := range reps {
			if r.Desired == api.DesiredRun {
				total += cpu[r.ID]
			}
		}
		per := float64(run.Resources.CPU) * float64(as.TargetCPU) / 100
		want = Recommend(total, per, as.Min, as.Max)
		why = fmt.Sprintf("%.0f millicores over a target of %.0f per replica", total, per)
	}

	// Stabilization: scale up at once; scale down only to the highest
	// recommendation of the window, so that a dip does not flap.
	a.mu.Lock()
	recs := append(a.recs[s.Name], recommendation{at: now, replicas: want})
	keep := recs[:0]
	for _, r := range recs {
		if now.Sub(r.at) <= as.Window.D() {
			keep = append(keep, r)
		}
	}
	a.recs[s.Name] = keep
	target := want
	if want < cur {
		target = 0
		for _, r := range keep {
			target = max(target, r.replicas)
		}
	}
	a.mu.Unlock()
	target = min(max(target, as.Min), as.Max)
	if target == cur {
		return nil
	}
	svc := s.Service
	r := *s.Run
	r.Replicas = &target
	svc.Run = &r
	res, err := a.leader.ApplyLocal(ctx, &server.Command{Op: server.OpServiceUpsert, Service: &svc})
	if err != nil {
		return fmt.Errorf("scaling %s: %w", s.Name, err)
	}
	if res.Error != "" {
		return fmt.Errorf("scaling %s: %s", s.Name, res.Error)
	}
	a.logger.Info("autoscaled", "service", s.Name, "from", cur, "to", target, "why", why)
	return nil
}
