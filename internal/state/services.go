package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
)

// ServiceUpsert stores svc at idx, replacing any service of that name
// (the caller has validated it and checked its routes against the other
// services). CreateIndex is kept on replace.
func (s *Store) ServiceUpsert(idx uint64, svc *api.Service) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableServices, "id", svc.Name)
	if err != nil {
		return fmt.Errorf("service upsert: %w", err)
	}
	e := &api.ServiceEntry{Service: *svc, CreateIndex: idx, ModifyIndex: idx}
	e.Kind = ""
	var old *api.ServiceEntry
	if raw != nil {
		old = raw.(*api.ServiceEntry)
		e.CreateIndex = old.CreateIndex
	}
	setRunVersion(e, old, idx, s.now())
	if e.Rollout != nil && e.RunVersion == idx && (old == nil || old.RunVersion != idx) {
		msg := fmt.Sprintf("service %s: rollout of version %d started", e.Name, idx)
		if old == nil || old.Run == nil {
			msg = fmt.Sprintf("service %s: version %d placed", e.Name, idx)
		}
		if err := s.addEvent(txn, idx, api.EventRolloutStarted, e.Name, msg, map[string]string{"version": fmt.Sprint(idx)}); err != nil {
			return err
		}
	}
	if err := txn.Insert(tableServices, e); err != nil {
		return fmt.Errorf("service upsert: %w", err)
	}
	if err := setIndex(txn, tableServices, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// setRunVersion gives e (replacing old, nil if new) its RunVersion and
// Rollout: a run section whose version key changed starts a rollout at
// idx, remembering the last completed version to revert to.
func setRunVersion(e, old *api.ServiceEntry, idx uint64, now time.Time) {
	if e.Run == nil {
		return
	}
	if old != nil && old.Run != nil && spec.RunVersionKey(old.Run) == spec.RunVersionKey(e.Run) {
		e.RunVersion, e.Rollout = old.RunVersion, old.Rollout
		return
	}
	r := &api.Rollout{Version: idx, State: api.RolloutProgress, Since: now}
	if old != nil && old.Rollout != nil {
		r.StableVersion, r.StableRun = old.Rollout.StableVersion, old.Rollout.StableRun
		if old.Rollout.State == api.RolloutComplete {
			r.StableVersion, r.StableRun = old.RunVersion, old.Run
		}
	}
	e.RunVersion, e.Rollout = idx, r
}

// ServiceSetRollout records a rollout's progress at idx. It applies only
// while the service's RunVersion is still version. State reverted rolls
// the service back to its last completed run section and version (failed
// when there is none).
func (s *Store) ServiceSetRollout(idx uint64, name string, version uint64, state, msg string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableServices, "id", name)
	if err != nil {
		return fmt.Errorf("service rollout: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("service %q: %w", name, ErrNotFound)
	}
	old := raw.(*api.ServiceEntry)
	if old.RunVersion != version || old.Rollout == nil {
		return nil // superseded by a newer version
	}
	e := *old
	r := *old.Rollout
	if r.State != state {
		r.Since = s.now()
		typ := map[string]string{api.RolloutComplete: api.EventRolloutComplete, api.RolloutFailed: api.EventRolloutFailed, api.RolloutReverted: api.EventRolloutReverted}[state]
		if state == api.RolloutReverted && r.StableRun == nil {
			typ = api.EventRolloutFailed
		}
		if typ != "" {
			text := fmt.Sprintf("service %s: rollout of version %d %s", name, version, state)
			if msg != "" {
				text += ": " + msg
			}
			if err := s.addEvent(txn, idx, typ, name, text, map[string]string{"version": fmt.Sprint(version)}); err != nil {
				return err
			}
		}
	}
	r.State, r.Message = state, msg
	switch {
	case state == api.RolloutComplete:
		r.StableVersion, r.StableRun = version, old.Run
	case state == api.RolloutReverted && r.StableRun != nil:
		// Go back to the last good run section, keeping the count, as a
		// new version.
		// It keeps the stable version's number, so that the replicas of
		// that version that still run are current again (not replaced by
		// identical ones) and those of the failed version are the old ones.
		back := *r.StableRun
		back.Replicas, back.Autoscale = old.Run.Replicas, old.Run.Autoscale
		e.Run = &back
		e.RunVersion = r.StableVersion
		r = api.Rollout{Version: r.StableVersion, State: api.RolloutProgress, Since: s.now(),
			Message: msg, RevertedFrom: version,
			StableVersion: r.StableVersion, StableRun: r.StableRun}
	case state == api.RolloutReverted:
		r.State = api.RolloutFailed // nothing to go back to
	}
	e.Rollout = &r
	e.ModifyIndex = idx
	if err := txn.Insert(tableServices, &e); err != nil {
		return fmt.Errorf("service rollout: %w", err)
	}
	if err := setIndex(txn, tableServices, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ServiceDelete removes a service at idx; ErrNotFound if there is none.
func (s *Store) ServiceDelete(idx uint64, name string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableServices, "id", name)
	if err != nil {
		return fmt.Errorf("service delete: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("service %q: %w", name, ErrNotFound)
	}
	if err := txn.Delete(tableServices, raw); err != nil {
		return fmt.Errorf("service delete: %w", err)
	}
	if err := setIndex(txn, tableServices, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ServiceSetDrain sets or clears the drain flag of one backend of a
// service at idx; ErrNotFound if the service or backend does not exist.
func (s *Store) ServiceSetDrain(idx uint64, name, addr string, drain bool) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableServices, "id", name)
	if err != nil {
		return fmt.Errorf("service drain: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("service %q: %w", name, ErrNotFound)
	}
	old := raw.(*api.ServiceEntry)
	e := *old
	e.Backends = append([]api.Backend(nil), old.Backends...)
	found := false
	for i := range e.Backends {
		if e.Backends[i].Address == addr {
			e.Backends[i].Drain = drain
			found = true
		}
	}
	if !found {
		return fmt.Errorf("service %q has no backend %q: %w", name, addr, ErrNotFound)
	}
	e.ModifyIndex = idx
	if err := txn.Insert(tableServices, &e); err != nil {
		return fmt.Errorf("service drain: %w", err)
	}
	if err := setIndex(txn, tableServices, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ServiceGet returns one service (nil if absent) and the index to block on.
func (s *Store) ServiceGet(ws memdb.WatchSet, name string) (uint64, *api.ServiceEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableServices)
	if err != nil {
		return 0, nil, err
	}
	ch, raw, err := txn.FirstWatch(tableServices, "id", name)
	if err != nil {
		return 0, nil, fmt.Errorf("service get: %w", err)
	}
	if ws != nil {
		ws.Add(ch)
	}
	if raw == nil {
		return max(idx, 1), nil, nil
	}
	return max(idx, 1), raw.(*api.ServiceEntry), nil
}

// ServiceList returns every service sorted by name and the index to block on.
func (s *Store) ServiceList(ws memdb.WatchSet) (uint64, []*api.ServiceEntry, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableServices)
	if err != nil {
		return 0, nil, err
	}
	it, err := txn.Get(tableServices, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("service list: %w", err)
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	var out []*api.ServiceEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*api.ServiceEntry))
	}
	return max(idx, 1), out, nil
}
