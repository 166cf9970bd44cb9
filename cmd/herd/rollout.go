package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

// blockWait bounds each blocking query of a wait, so that a lost answer
// costs at most this long.
const blockWait = 5 * time.Second

// maxQueryFailures is how many failed reads in a row end a wait.
const maxQueryFailures = 3

// serviceView is a service and its replicas as last read.
type serviceView struct {
	entry    *api.ServiceEntry
	replicas []*api.Replica
}

// waitStep looks at a new view: it reports whether the wait is over and,
// if it failed, why.
type waitStep func(v serviceView) (done bool, err error)

// watchService follows a service and its replicas with blocking queries
// and calls step on every change (and once at the start) until step is
// done or fails, or ctx ends (then it returns ctx's error). The service
// and the replicas are two tables with their own indexes, so each is
// followed by its own goroutine; both stop before watchService returns.
func watchService(ctx context.Context, c *api.Client, name string, step waitStep) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	type update struct {
		entry    *api.ServiceEntry
		replicas []*api.Replica
		isEntry  bool
	}
	updates := make(chan update)
	failed := make(chan error, 2)
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	// follow sends what read returns first, then whenever its index
	// moves.
	follow := func(read func(q *api.QueryOptions) (uint64, update, error)) {
		var index uint64
		sent := false
		failures := 0
		for {
			idx, u, err := read(&api.QueryOptions{WaitIndex: index, WaitTime: blockWait})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if failures++; failures >= maxQueryFailures {
					failed <- err
					return
				}
				if !sleep(time.Duration(failures) * 500 * time.Millisecond) {
					return
				}
				continue
			}
			failures = 0
			changed := !sent || idx != index
			switch {
			case idx == 0:
				// No index to block on: poll.
				if !sleep(time.Second) {
					return
				}
			case idx < index:
				idx = 0 // the index went back (a restored snapshot): read afresh
			}
			index = idx
			if !changed {
				continue // the wait time passed without a change
			}
			sent = true
			select {
			case updates <- u:
			case <-ctx.Done():
				return
			}
		}
	}
	wg.Go(func() {
		follow(func(q *api.QueryOptions) (uint64, update, error) {
			e, meta, err := c.ServiceGet(ctx, name, q)
			if err != nil {
				return 0, update{}, fmt.Errorf("reading service %s: %w", name, err)
			}
			return meta.Index, update{entry: e, isEntry: true}, nil
		})
	})
	wg.Go(func() {
		follow(func(q *api.QueryOptions) (uint64, update, error) {
			rs, meta, err := c.Replicas(ctx, name, "", q)
			if err != nil {
				return 0, update{}, fmt.Errorf("reading the replicas of %s: %w", name, err)
			}
			return meta.Index, update{replicas: rs}, nil
		})
	})

	var v serviceView
	var haveEntry, haveReplicas bool
	for {
		select {
		case u := <-updates:
			if u.isEntry {
				v.entry, haveEntry = u.entry, true
			} else {
				v.replicas, haveReplicas = u.replicas, true
			}
			if !haveEntry || !haveReplicas {
				continue
			}
			done, err := step(v)
			if err != nil || done {
				return err
			}
		case err := <-failed:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// replicaLabel is how a progress line describes a replica's state.
func replicaLabel(r *api.Replica) string {
	withError := func(s string) string {
		if r.Error != "" {
			return s + ": " + r.Error
		}
		return s
	}
	switch {
	case r.Desired == api.DesiredStop && r.State != api.ReplicaStopped && r.State != api.ReplicaFailed && r.State != api.ReplicaLost:
		return "stopping"
	case r.Node == "" && r.Desired == api.DesiredRun:
		return withError("waiting for a node")
	case r.State == api.ReplicaRunning && r.Health == api.HealthHealthy:
		return "healthy"
	case r.State == api.ReplicaRunning && r.Health == api.HealthUnhealthy:
		return "unhealthy"
	case r.State == api.ReplicaStarting && r.Health == api.HealthUnhealthy:
		return "starting (health check failing)"
	case r.State == api.ReplicaBackoff, r.State == api.ReplicaFailed:
		return withError(r.State)
	}
	return r.State
}

// progress prints a line whenever a replica it follows changes state.
type progress struct {
	w       io.Writer
	service string
	// labels holds the last state printed for each replica followed.
	labels map[string]string
}

func newProgress(w io.Writer, service string) *progress {
	return &progress{w: w, service: service, labels: map[string]string{}}
}

// seed records the states of rs without printing them, so that only
// later changes are shown.
func (p *progress) seed(rs []*api.Replica) {
	for _, r := range rs {
		p.labels[r.ID] = replicaLabel(r)
	}
}

// update prints the replicas of rs whose state changed (new ones
// included), and those followed before that are gone.
func (p *progress) update(rs []*api.Replica) {
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		seen[r.ID] = true
		l := replicaLabel(r)
		if p.labels[r.ID] != l {
			p.labels[r.ID] = l
			fmt.Fprintf(p.w, "%s: replica %s %s\n", p.service, r.ID, l)
		}
	}
	var gone []string
	for id := range p.labels {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		delete(p.labels, id)
		fmt.Fprintf(p.w, "%s: replica %s removed\n", p.service, id)
	}
}

// replicaCounts summarises a service's replicas for a wait.
type replicaCounts struct {
	want int
	// run is how many are meant to run; healthy how many of those run
	// the service's current version, healthy; stopping how many meant to
	// stop still run.
	run, healthy, stopping int
}

func countReplicas(e *api.ServiceEntry, rs []*api.Replica) replicaCounts {
	c := replicaCounts{want: *spec.RunDefaults(e.Run).Replicas}
	for _, r := range rs {
		if r.Desired != api.DesiredRun {
			if r.Node != "" && (r.State == api.ReplicaRunning || r.State == api.ReplicaStarting) {
				c.stopping++
			}
			continue
		}
		c.run++
		if r.Version == e.RunVersion && r.State == api.ReplicaRunning && r.Health == api.HealthHealthy {
			c.healthy++
		}
	}
	return c
}

// met reports whether exactly the wanted replicas run, healthy, and no
// replica meant to stop still runs.
func (c replicaCounts) met() bool {
	return c.run == c.want && c.healthy == c.want && c.stopping == 0
}

func (c replicaCounts) String() string {
	s := fmt.Sprintf("%d/%d replicas healthy", c.healthy, c.want)
	if c.stopping > 0 {
		s += fmt.Sprintf(", %d still stopping", c.stopping)
	}
	return s
}

// waitTimeout is the error of a wait whose time is up: it says what the
// wait was for.
type waitTimeout struct{ what string }

func (e *waitTimeout) Error() string { return "timed out waiting for " + e.what }

// waitReplicas waits until service name has the replicas its run section
// asks for, all healthy, printing their changes to w.
func waitReplicas(ctx context.Context, c *api.Client, w io.Writer, name string) error {
	p := newProgress(w, name)
	first := true
	var last replicaCounts
	err := watchService(ctx, c, name, func(v serviceView) (bool, error) {
		if v.entry == nil {
			return false, fmt.Errorf("service %s was removed", name)
		}
		if v.entry.Run == nil {
			return false, fmt.Errorf("service %s no longer has a run section", name)
		}
		if first {
			p.seed(v.replicas)
			first = false
		} else {
			p.update(v.replicas)
		}
		last = countReplicas(v.entry, v.replicas)
		if last.met() {
			fmt.Fprintf(w, "%s: %s\n", name, last)
			return true, nil
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return &waitTimeout{fmt.Sprintf("%s to have %s: %s", name, plural(last.want, "healthy replica"), last)}
	}
	return err
}

// waitRollout follows the rollout of run version version of service
// name, printing the changes of that version's replicas to w, until it
// completes. It fails when the rollout fails or is reverted.
func waitRollout(ctx context.Context, c *api.Client, w io.Writer, name string, version uint64) error {
	p := newProgress(w, name)
	var last replicaCounts
	err := watchService(ctx, c, name, func(v serviceView) (bool, error) {
		e := v.entry
		if e == nil {
			return false, fmt.Errorf("service %s was removed during its rollout", name)
		}
		var ours []*api.Replica
		for _, r := range v.replicas {
			if r.Version == version {
				ours = append(ours, r)
			}
		}
		p.update(ours)
		ro := e.Rollout
		switch {
		case e.RunVersion != version && ro != nil && ro.RevertedFrom == version:
			return false, fmt.Errorf("%s: rollout failed and was reverted: %s", name, ro.Message)
		case e.RunVersion != version || e.Run == nil:
			return false, fmt.Errorf("%s: changed again during its rollout (now at run version %d): not following it further", name, e.RunVersion)
		case ro == nil || ro.Version != version:
			return false, nil
		}
		last = countReplicas(e, v.replicas)
		switch ro.State {
		case api.RolloutComplete:
			fmt.Fprintf(w, "%s: rollout complete: %d/%d replicas healthy\n", name, last.healthy, last.want)
			return true, nil
		case api.RolloutFailed:
			return false, fmt.Errorf("%s: rollout failed: %s", name, ro.Message)
		case api.RolloutReverted:
			return false, fmt.Errorf("%s: rollout failed and was reverted: %s", name, ro.Message)
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return &waitTimeout{fmt.Sprintf("the rollout of %s (run version %d) to complete: %s", name, version, last)}
	}
	return err
}

// timeoutError says which --timeout a wait ran out of, and that an
// interrupted wait left the change in place.
func timeoutError(err error, timeout time.Duration) error {
	var wt *waitTimeout
	switch {
	case errors.As(err, &wt):
		return fmt.Errorf("timed out after %s waiting for %s", timeout, wt.what)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s: %w", timeout, err)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted while waiting: the change stays applied and goes on in the cluster")
	}
	return err
}

// plural is "1 replica", "3 replicas".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
