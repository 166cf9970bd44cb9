// Package controller keeps the cluster's replicas in line with its
// services. It runs on the Raft leader only: it reads the replicated state,
// decides (placements through package scheduler, replacements of replicas
// on failed nodes, rolling updates, scale-downs, clean-up) and writes its
// decisions back through Raft as replica plans. Every pass is idempotent:
// running it twice on the same state changes nothing the second time.
package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/scheduler"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/spec"
	"github.com/herd-cluster/herd/internal/state"
)

// DefaultNodeGrace is how long a failed node may come back before its
// replicas are declared lost and replaced.
const DefaultNodeGrace = 2 * time.Second

// Leader is what the controller needs from the Raft server it runs on.
type Leader interface {
	Store() *state.Store
	ApplyLocal(ctx context.Context, cmd *server.Command) (*server.Result, error)
}

// Config tunes a Controller.
type Config struct {
	// NodeGrace: see DefaultNodeGrace.
	NodeGrace time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Controller reconciles replicas toward services.
type Controller struct {
	cfg    Config
	leader Leader
	logger *slog.Logger
	now    func() time.Time
}

// New returns a Controller for the given leader.
func New(cfg Config, l Leader) *Controller {
	if cfg.NodeGrace <= 0 {
		cfg.NodeGrace = DefaultNodeGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	return &Controller{cfg: cfg, leader: l, logger: cfg.Logger, now: time.Now}
}

// Run reconciles whenever the state changes or a deadline it waits for
// passes, until ctx ends (leadership lost or agent stopping).
func (c *Controller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		next, err := c.Reconcile(ctx, ws)
		if err != nil && ctx.Err() == nil {
			c.logger.Warn("reconciling replicas", "err", err)
			next = min(next, time.Second)
		}
		wctx, cancel := context.WithTimeout(ctx, next)
		_ = ws.WatchCtx(wctx)
		cancel()
		// Let a burst of changes (a node's report of many replicas) land.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pass is one reconciliation: what it read and what it decided.
type pass struct {
	c     *Controller
	now   time.Time
	nodes map[string]*api.Node
	// nodeList and reps are what the pass read, for scratch accounting.
	nodeList []*api.Node
	reps     []*api.Replica
	plan     state.ReplicaPlan
	// next is the earliest time a deadline makes a new pass worthwhile.
	next     time.Duration
	rollouts []*server.Command
}

func (p *pass) wake(after time.Duration) {
	if after > 0 && after < p.next {
		p.next = after
	}
}

func (p *pass) upsert(r *api.Replica) { p.plan.Upsert = append(p.plan.Upsert, r) }

// Reconcile runs one pass. It adds what it read to ws and returns how soon
// it wants to run again even if nothing changes.
func (c *Controller) Reconcile(ctx context.Context, ws memdb.WatchSet) (time.Duration, error) {
	st := c.leader.Store()
	_, services, err := st.ServiceList(ws)
	if err != nil {
		return time.Second, err
	}
	_, nodes, err := st.Nodes(ws)
	if err != nil {
		return time.Second, err
	}
	_, replicas, err := st.Replicas(ws, "", "")
	if err != nil {
		return time.Second, err
	}
	p := &pass{c: c, now: c.now(), nodes: map[string]*api.Node{}, next: 30 * time.Second}
	for _, n := range nodes {
		p.nodes[n.Name] = n
	}
	// Work on copies: the plan carries changed replicas.
	reps := make([]*api.Replica, len(replicas))
	for i, r := range replicas {
		cp := *r
		reps[i] = &cp
	}
	p.markLost(reps)
	p.nodeList, p.reps = nodes, reps
	cluster := scheduler.NewCluster(nodes, reps)

	bySvc := map[string][]*api.Replica{}
	for _, r := range reps {
		bySvc[r.Service] = append(bySvc[r.Service], r)
	}
	known := map[string]bool{}
	for _, svc := range services {
		if svc.Run == nil {
			continue
		}
		known[svc.Name] = true
		p.service(cluster, svc, bySvc[svc.Name])
	}
	// Replicas of services that are gone (or no longer run) stop.
	for name, rs := range bySvc {
		if known[name] {
			continue
		}
		for _, r := range rs {
			p.stop(r, "service removed")
		}
	}
	p.collect(reps)

	if len(p.plan.Upsert) > 0 || len(p.plan.Delete) > 0 {
		if _, err := c.leader.ApplyLocal(ctx, &server.Command{Op: server.OpReplicaPlan, Plan: &p.plan}); err != nil {
			return time.Second, fmt.Errorf("replica plan: %w", err)
		}
	}
	for _, cmd := range p.rollouts {
		if _, err := c.leader.ApplyLocal(ctx, cmd); err != nil {
			return time.Second, fmt.Errorf("rollout state: %w", err)
		}
	}
	return p.next, nil
}

// markLost declares lost the replicas of nodes that have been down longer
// than the grace.
func (p *pass) markLost(reps []*api.Replica) {
	for _, r := range reps {
		if r.Node == "" || r.State == api.ReplicaLost || r.Desired != api.DesiredRun {
			continue
		}
		n := p.nodes[r.Node]
		switch {
		case n == nil:
			r.State, r.Error = api.ReplicaLost, fmt.Sprintf("node %s is not registered", r.Node)
		case n.Status == api.NodeDown:
			down := p.now.Sub(n.StatusSince)
			if n.StatusSince.IsZero() || down >= p.c.cfg.NodeGrace {
				r.State, r.Error = api.ReplicaLost, fmt.Sprintf("node %s failed", r.Node)
				r.Health = api.HealthUnknown
			} else {
				p.wake(p.c.cfg.NodeGrace - down)
				continue
			}
		default:
			continue
		}
		p.c.logger.Info("replica lost with its node", "replica", r.ID, "node", r.Node)
		p.upsert(r)
	}
}

// service reconciles one service's replicas.
func (p *pass) service(cluster *scheduler.Cluster, svc *api.ServiceEntry, rs []*api.Replica) {
	run := spec.RunDefaults(svc.Run)
	want := *run.Replicas
	version := svc.RunVersion
	ro := svc.Rollout

	var active, current, old, doomed []*api.Replica
	for _, r := range rs {
		if r.Desired != api.DesiredRun {
			continue
		}
		node := p.nodes[r.Node]
		switch {
		case r.State == api.ReplicaLost:
			doomed = append(doomed, r)
			continue
		case node != nil && node.Drain:
			doomed = append(doomed, r)
			continue
		}
		active = append(active, r)
		if r.Version == version {
			current = append(current, r)
		} else {
			old = append(old, r)
		}
	}
	failed := ro != nil && ro.Version == version && (ro.State == api.RolloutFailed || ro.State == api.RolloutReverted)

	// Replicas not yet placed (no node fitted before) try again.
	for _, r := range active {
		if r.Node == "" {
			p.placeExisting(cluster, svc, run, r)
		}
	}

	// Doomed replicas (lost, or on a draining node) get a replacement
	// first; they stop once it is healthy.
	replacedBy := map[string]*api.Replica{}
	for _, r := range rs {
		if r.Replaces != "" && r.Desired == api.DesiredRun {
			replacedBy[r.Replaces] = r
		}
	}
	var needRepl []*api.Replica
	// A drain moves replicas under the update's gates: at most
	// max_parallel replacements not yet proven at a time. Replicas of a
	// failed node are replaced at once: they serve nobody.
	drainBudget := run.Update.MaxParallel
	for _, r := range doomed {
		if nr := replacedBy[r.ID]; nr != nil {
			if p.stable(nr, run) || nr.State == api.ReplicaLost {
				p.stop(r, "replaced by "+nr.ID)
			} else if r.State != api.ReplicaLost {
				drainBudget--
			}
		}
	}
	for _, r := range doomed {
		if replacedBy[r.ID] != nil {
			continue
		}
		if r.State != api.ReplicaLost {
			if drainBudget <= 0 {
				// It waits for an earlier replacement to prove itself,
				// and serves meanwhile: count it where it is.
				active = append(active, r)
				if r.Version == version {
					current = append(current, r)
				} else {
					old = append(old, r)
				}
				continue
			}
			drainBudget--
		}
		needRepl = append(needRepl, r)
	}
	// A doomed replica is replaced only while the service still wants it.
	room := want - len(active)
	if room < len(needRepl) {
		for _, r := range needRepl[max(room, 0):] {
			p.stop(r, "not needed")
		}
		needRepl = needRepl[:max(room, 0)]
	}
	if len(needRepl) > 0 {
		plan := cluster.Replace(svc.Name, run, needRepl)
		for _, pl := range plan.Placements {
			nr := p.newReplica(svc, run, pl.Node, pl.Ports, pl.Resources)
			nr.Replaces = pl.Replaces
			active = append(active, nr)
			current = append(current, nr)
		}
		for _, r := range needRepl[len(plan.Placements):] {
			nr := p.newReplica(svc, run, "", nil, scheduler.ReplicaResources(run))
			nr.Replaces, nr.Error = r.ID, plan.Reason
			active = append(active, nr)
			current = append(current, nr)
		}
	}

	if len(old) == 0 || failed {
		// Steady state (or a failed rollout, which stops moving): hold the
		// count.
		switch {
		case len(active) < want && !(failed && len(old) > 0):
			p.place(cluster, svc, run, want-len(active))
		case len(active) > want:
			for _, r := range cluster.PickStop(run, active, len(active)-want) {
				p.stop(r, "scaled down")
			}
		}
	} else {
		// Rolling update: new replicas first, max_parallel unproven at a
		// time; an old one stops for each new one proven healthy.
		proven := 0
		for _, r := range current {
			if p.stable(r, run) {
				proven++
			}
		}
		if stop := proven + len(old) - want; stop > 0 {
			for _, r := range cluster.PickStop(run, old, stop) {
				p.stop(r, "replaced by the new version")
			}
		}
		unproven := len(current) - proven
		if n := min(want-len(current), run.Update.MaxParallel-unproven); n > 0 {
			p.place(cluster, svc, run, n)
		}
		if len(current) > want {
			for _, r := range cluster.PickStop(run, current, len(current)-want) {
				p.stop(r, "scaled down")
			}
		}
		old = p.makeRoom(cluster, svc, run, current, old, proven, want)
	}
	p.rollout(svc, run, current, old, want, failed)
}

// makeRoom handles a rollout with no room for a new replica to start
// beside the old ones (distinct_hosts with as many replicas as nodes, or
// full nodes, or a node lost mid-rollout): for each new replica waiting
// for a place, an old replica whose node would then fit it stops first,
// as long as no more than max_parallel replicas are unavailable at a
// time. The waiting replica is placed once the old one has stopped. It
// returns the old replicas that still run.
func (p *pass) makeRoom(cluster *scheduler.Cluster, svc *api.ServiceEntry, run *api.Run, current, old []*api.Replica, proven, want int) []*api.Replica {
	waiting := 0
	for _, r := range current {
		if r.Node == "" {
			waiting++
		}
	}
	budget := proven + len(old) - (want - run.Update.MaxParallel)
	if waiting == 0 || budget <= 0 {
		return old
	}
	stopped := map[string]bool{}
	for _, cand := range cluster.PickStop(run, old, len(old)) {
		if waiting == 0 || budget <= 0 {
			break
		}
		if p.roomWithout(svc, run, cand) {
			p.stop(cand, "making room for the new version")
			stopped[cand.ID] = true
			waiting--
			budget--
		}
	}
	var left []*api.Replica
	for _, r := range old {
		if !stopped[r.ID] {
			left = append(left, r)
		}
	}
	return left
}

// roomWithout reports whether a new replica of the service would find a
// node if replica gone were not there, judged on scratch accounting of
// what this pass read and planned so far.
func (p *pass) roomWithout(svc *api.ServiceEntry, run *api.Run, gone *api.Replica) bool {
	seen := map[string]bool{gone.ID: true}
	var rs []*api.Replica
	for _, list := range [][]*api.Replica{p.reps, p.plan.Upsert} {
		for _, r := range list {
			if !seen[r.ID] {
				seen[r.ID] = true
				rs = append(rs, r)
			}
		}
	}
	plan := scheduler.NewCluster(p.nodeList, rs).Place(scheduler.Request{Service: svc.Name, Run: run, Count: 1})
	return len(plan.Placements) == 1
}

// stable reports whether a replica has been healthy for the update's
// min_healthy_time, and asks for a pass when it will be.
func (p *pass) stable(r *api.Replica, run *api.Run) bool {
	if r.Health != api.HealthHealthy || r.HealthySince.IsZero() || r.State == api.ReplicaLost {
		return false
	}
	need := run.Update.MinHealthyTime.D()
	if up := p.now.Sub(r.HealthySince); up < need {
		p.wake(need - up)
		return false
	}
	return true
}

// rollout moves the service's rollout state: complete when every replica
// runs the version and is proven; failed when one of them is not healthy
// by the deadline (then reverted with auto_revert).
func (p *pass) rollout(svc *api.ServiceEntry, run *api.Run, current, old []*api.Replica, want int, failed bool) {
	ro := svc.Rollout
	if ro == nil || ro.Version != svc.RunVersion || ro.State != api.RolloutProgress {
		return
	}
	set := func(state, msg string) {
		p.rollouts = append(p.rollouts, &server.Command{Op: server.OpServiceRollout, ID: svc.Name, Version: svc.RunVersion, State: state, Message: msg})
	}
	proven := 0
	deadline := run.Update.HealthyDeadline.D()
	for _, r := range current {
		if p.stable(r, run) {
			proven++
			continue
		}
		if r.Node == "" {
			continue // waits for a place; the reason is on the replica
		}
		age := p.now.Sub(r.CreateTime)
		if age < deadline {
			p.wake(deadline - age)
			continue
		}
		msg := fmt.Sprintf("replica %s not healthy after %s", r.ID, deadline)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		if run.Update.AutoRevert && ro.StableRun != nil {
			p.c.logger.Warn("rollout failed; reverting", "service", svc.Name, "version", svc.RunVersion, "to", ro.StableVersion, "why", msg)
			set(api.RolloutReverted, msg)
		} else {
			p.c.logger.Warn("rollout failed", "service", svc.Name, "version", svc.RunVersion, "why", msg)
			set(api.RolloutFailed, msg)
		}
		return
	}
	if !failed && len(old) == 0 && proven == want && len(current) == want {
		set(api.RolloutComplete, "")
	}
}

// place adds n new replicas of the service where the scheduler finds room;
// those it cannot place wait, unplaced, with the reason.
func (p *pass) place(cluster *scheduler.Cluster, svc *api.ServiceEntry, run *api.Run, n int) {
	plan := cluster.Place(scheduler.Request{Service: svc.Name, Run: run, Count: n})
	for _, pl := range plan.Placements {
		p.newReplica(svc, run, pl.Node, pl.Ports, pl.Resources)
	}
	for range plan.Unplaced {
		r := p.newReplica(svc, run, "", nil, scheduler.ReplicaResources(run))
		r.Error = plan.Reason
	}
	if plan.Unplaced > 0 {
		p.c.logger.Warn("replicas not placed", "service", svc.Name, "count", plan.Unplaced, "reason", plan.Reason)
		p.wake(5 * time.Second)
	}
}

// placeExisting gives a waiting replica a node, or updates why it waits.
func (p *pass) placeExisting(cluster *scheduler.Cluster, svc *api.ServiceEntry, run *api.Run, r *api.Replica) {
	plan := cluster.Place(scheduler.Request{Service: svc.Name, Run: run, Count: 1})
	if len(plan.Placements) == 0 {
		if r.Error != plan.Reason {
			r.Error = plan.Reason
			p.upsert(r)
		}
		p.wake(5 * time.Second)
		return
	}
	pl := plan.Placements[0]
	r.Node, r.Ports, r.Resources, r.Error = pl.Node, pl.Ports, pl.Resources, ""
	r.Address = p.nodes[pl.Node].Address
	r.Run = run
	r.Check = svc.HealthCheck
	r.Version = svc.RunVersion
	r.CreateTime = p.now.UTC()
	p.upsert(r)
}

func (p *pass) newReplica(svc *api.ServiceEntry, run *api.Run, node string, ports map[string]int, res api.Resources) *api.Replica {
	r := &api.Replica{
		ID: newID(svc.Name), Service: svc.Name, Version: svc.RunVersion, Node: node, Ports: ports,
		Desired: api.DesiredRun, State: api.ReplicaPending, Health: api.HealthUnknown,
		Resources: res, Run: run, Check: svc.HealthCheck, CreateTime: p.now.UTC(),
	}
	if n := p.nodes[node]; n != nil {
		r.Address = n.Address
	}
	p.upsert(r)
	return r
}

// stop asks a replica's node to stop it.
func (p *pass) stop(r *api.Replica, why string) {
	if r.Desired == api.DesiredStop {
		return
	}
	r.Desired = api.DesiredStop
	if r.Node == "" {
		r.State = api.ReplicaStopped
	}
	p.c.logger.Info("stopping replica", "replica", r.ID, "node", r.Node, "why", why)
	p.upsert(r)
}

// collect deletes the replicas that are stopped for good: confirmed
// stopped by their node, never placed, or lost with a node that is gone.
func (p *pass) collect(reps []*api.Replica) {
	for _, r := range reps {
		if r.Desired != api.DesiredStop {
			continue
		}
		n := p.nodes[r.Node]
		switch {
		case r.State == api.ReplicaStopped, r.State == api.ReplicaFailed, r.Node == "",
			n == nil, n.Status == api.NodeDown && r.State == api.ReplicaLost:
			p.plan.Delete = append(p.plan.Delete, r.ID)
		}
	}
}

// newID returns a replica ID: the service name and 8 random hex digits.
func newID(service string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return service + "-" + hex.EncodeToString(b[:])
}
