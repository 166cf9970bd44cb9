package state

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/scheduler"
)

// NodeRegister records the attributes a client node reports about itself
// at idx. Its eligibility and drain flags are the operator's and are kept.
func (s *Store) NodeRegister(idx uint64, n *api.Node) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableNodes, "id", n.Name)
	if err != nil {
		return fmt.Errorf("node register: %w", err)
	}
	e := *n
	e.Eligible, e.Drain = true, false
	if raw != nil {
		old := raw.(*api.Node)
		e.Eligible, e.Drain = old.Eligible, old.Drain
	}
	e.Status, e.Used, e.StatusSince = "", api.Resources{}, e.StatusSince.UTC()
	e.ModifyIndex = idx
	if err := txn.Insert(tableNodes, &e); err != nil {
		return fmt.Errorf("node register: %w", err)
	}
	if err := setIndex(txn, tableNodes, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// NodeSetEligibility sets a node's eligible and drain flags at idx (nil
// leaves one as it is); ErrNotFound if the node never registered.
func (s *Store) NodeSetEligibility(idx uint64, name string, eligible, drain *bool) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableNodes, "id", name)
	if err != nil {
		return fmt.Errorf("node eligibility: %w", err)
	}
	if raw == nil {
		return fmt.Errorf("node %q: %w", name, ErrNotFound)
	}
	e := *raw.(*api.Node)
	if eligible != nil {
		e.Eligible = *eligible
	}
	if drain != nil {
		e.Drain = *drain
		if *drain {
			e.Eligible = false
		}
	}
	e.ModifyIndex = idx
	if err := txn.Insert(tableNodes, &e); err != nil {
		return fmt.Errorf("node eligibility: %w", err)
	}
	if err := setIndex(txn, tableNodes, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// NodeDelete forgets a node at idx (a node that left for good).
func (s *Store) NodeDelete(idx uint64, name string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableNodes, "id", name)
	if err != nil {
		return fmt.Errorf("node delete: %w", err)
	}
	if raw == nil {
		return nil
	}
	if err := txn.Delete(tableNodes, raw); err != nil {
		return fmt.Errorf("node delete: %w", err)
	}
	if err := setIndex(txn, tableNodes, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// Nodes returns every registered node by name, with Status filled from
// the recorded members (alive: ready; failed or left: down; unrecorded:
// unknown) and Used from the replicas that hold resources on it. The
// entries are copies the caller may change.
func (s *Store) Nodes(ws memdb.WatchSet) (uint64, []*api.Node, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableNodes, tableMembers, tableReplicas)
	if err != nil {
		return 0, nil, err
	}
	it, err := txn.Get(tableNodes, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("nodes: %w", err)
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	out := []*api.Node{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n := *raw.(*api.Node)
		n.Status = api.NodeUnknown
		if m, err := txn.First(tableMembers, "id", n.Name); err == nil && m != nil {
			mem := m.(*api.Member)
			n.StatusSince = mem.StatusSince
			if mem.Status == api.MemberAlive {
				n.Status = api.NodeReady
			} else {
				n.Status = api.NodeDown
			}
		}
		out = append(out, &n)
	}
	used := map[string]*api.Resources{}
	for _, n := range out {
		used[n.Name] = &n.Used
	}
	rit, err := txn.Get(tableReplicas, "id")
	if err != nil {
		return 0, nil, fmt.Errorf("nodes: %w", err)
	}
	for raw := rit.Next(); raw != nil; raw = rit.Next() {
		r := raw.(*api.Replica)
		if u := used[r.Node]; u != nil && scheduler.HoldsResources(r) {
			u.CPU += r.Resources.CPU
			u.MemoryMB += r.Resources.MemoryMB
		}
	}
	return max(idx, 1), out, nil
}

// ReplicaPlan is one atomic change of replicas, written by the leader's
// controller.
type ReplicaPlan struct {
	// Upsert replaces or adds replicas (their indexes are set here).
	Upsert []*api.Replica `json:"upsert,omitempty"`
	// Delete removes replicas by ID.
	Delete []string `json:"delete,omitempty"`
}

// ReplicaApplyPlan applies a plan at idx in one transaction.
func (s *Store) ReplicaApplyPlan(idx uint64, p *ReplicaPlan) error {
	txn := s.writeTxn()
	defer txn.Abort()
	for _, r := range p.Upsert {
		if r.ID == "" || r.Service == "" {
			return fmt.Errorf("replica plan: a replica without ID or service")
		}
		raw, err := txn.First(tableReplicas, "id", r.ID)
		if err != nil {
			return fmt.Errorf("replica plan: %w", err)
		}
		e := *r
		e.CreateIndex, e.ModifyIndex = idx, idx
		var old *api.Replica
		if raw != nil {
			old = raw.(*api.Replica)
			e.CreateIndex = old.CreateIndex
		}
		if typ, msg := replicaPlanEvent(old, &e); typ != "" {
			if err := s.addEvent(txn, idx, typ, e.ID, msg, replicaAttrs(&e)); err != nil {
				return err
			}
		}
		if err := txn.Insert(tableReplicas, &e); err != nil {
			return fmt.Errorf("replica plan: %w", err)
		}
	}
	for _, id := range p.Delete {
		raw, err := txn.First(tableReplicas, "id", id)
		if err != nil {
			return fmt.Errorf("replica plan: %w", err)
		}
		if raw == nil {
			continue
		}
		if err := txn.Delete(tableReplicas, raw); err != nil {
			return fmt.Errorf("replica plan: %w", err)
		}
	}
	if err := setIndex(txn, tableReplicas, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// ReplicaReport records what node says about its replicas at idx. Reports
// about replicas that are not placed on node are ignored (a stale report
// after a move), and so is the state of a replica the leader declared
// lost, which only the leader changes.
func (s *Store) ReplicaReport(idx uint64, node string, reports []api.ReplicaStatus) error {
	txn := s.writeTxn()
	defer txn.Abort()
	changed := false
	for _, st := range reports {
		raw, err := txn.First(tableReplicas, "id", st.ID)
		if err != nil {
			return fmt.Errorf("replica report: %w", err)
		}
		if raw == nil || raw.(*api.Replica).Node != node {
			continue
		}
		e := *raw.(*api.Replica)
		// Only the leader declares a replica lost; the node that comes back
		// may only say that it stopped it.
		if e.State != api.ReplicaLost || st.State == api.ReplicaStopped || st.State == api.ReplicaFailed {
			e.State = st.State
		}
		e.Health, e.Restarts, e.CrashLoop, e.Error, e.ExitCode = st.Health, st.Restarts, st.CrashLoop, st.Error, st.ExitCode
		e.Enforced, e.StartedAt, e.HealthySince = st.Enforced, st.StartedAt, st.HealthySince
		e.ModifyIndex = idx
		if typ, msg := replicaReportEvent(raw.(*api.Replica), &e); typ != "" {
			if err := s.addEvent(txn, idx, typ, e.ID, msg, replicaAttrs(&e)); err != nil {
				return err
			}
		}
		if err := txn.Insert(tableReplicas, &e); err != nil {
			return fmt.Errorf("replica report: %w", err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	if err := setIndex(txn, tableReplicas, idx); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// Replicas returns replicas, by ID: all of them when service and node are
// empty, else those of a service or on a node.
func (s *Store) Replicas(ws memdb.WatchSet, service, node string) (uint64, []*api.Replica, error) {
	txn := s.readTxn()
	idx, err := maxIndex(txn, ws, tableReplicas)
	if err != nil {
		return 0, nil, err
	}
	var it memdb.ResultIterator
	switch {
	case service != "":
		it, err = txn.Get(tableReplicas, "service", service)
	case node != "":
		it, err = txn.Get(tableReplicas, "node", node)
	default:
		it, err = txn.Get(tableReplicas, "id")
	}
	if err != nil {
		return 0, nil, fmt.Errorf("replicas: %w", err)
	}
	if ws != nil {
		ws.Add(it.WatchCh())
	}
	out := []*api.Replica{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*api.Replica)
		if node != "" && r.Node != node {
			continue
		}
		out = append(out, r)
	}
	return max(idx, 1), out, nil
}

// ServiceListResolved is ServiceList for gateways: the backends of every
// service that herd runs are its replicas that are meant to run and are
// running and healthy, at the node's address and the replica's first
// port. Such a service's ModifyIndex is raised to its newest replica's, so
// that a gateway sees every change of its backends. The index covers the
// services, replicas and nodes.
func (s *Store) ServiceListResolved(ws memdb.WatchSet) (uint64, []*api.ServiceEntry, error) {
	idx, list, err := s.ServiceList(ws)
	if err != nil {
		return 0, nil, err
	}
	ridx, reps, err := s.Replicas(ws, "", "")
	if err != nil {
		return 0, nil, err
	}
	nidx, nodes, err := s.Nodes(ws)
	if err != nil {
		return 0, nil, err
	}
	zone := make(map[string]string, len(nodes))
	for _, n := range nodes {
		zone[n.Name] = n.Zone
	}
	bySvc := map[string][]*api.Replica{}
	for _, r := range reps {
		bySvc[r.Service] = append(bySvc[r.Service], r)
	}
	out := make([]*api.ServiceEntry, len(list))
	for i, e := range list {
		if e.Run == nil {
			out[i] = e
			continue
		}
		c := *e
		c.Backends = []api.Backend{}
		for _, r := range bySvc[e.Name] {
			c.ModifyIndex = max(c.ModifyIndex, r.ModifyIndex)
			if !Routable(r) {
				continue
			}
			c.Backends = append(c.Backends, api.Backend{
				Address: net.JoinHostPort(r.Address, strconv.Itoa(r.Ports[scheduler.PortNames(r.Run)[0]])),
				Weight:  1, Zone: zone[r.Node],
				Labels: map[string]string{"replica": r.ID, "node": r.Node},
			})
		}
		out[i] = &c
	}
	return max(idx, ridx, nidx), out, nil
}

// Routable reports whether a gateway may send traffic to a replica: it is
// meant to run, runs and is healthy, and its node was not given up on.
func Routable(r *api.Replica) bool {
	return r.Desired == api.DesiredRun && r.State == api.ReplicaRunning && r.Health == api.HealthHealthy &&
		r.Node != "" && r.Address != "" && len(r.Ports) > 0
}
