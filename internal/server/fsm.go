package server

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/spec"
	"github.com/herd-cluster/herd/internal/state"
)

// Op names a state change carried in a Raft log entry.
type Op string

// Operations. Values are part of the log format: never renumber or rename.
const (
	OpKVSet          Op = "kv.set"
	OpKVCAS          Op = "kv.cas"
	OpKVDelete       Op = "kv.delete"
	OpKVDeleteCAS    Op = "kv.delete_cas"
	OpKVDeleteTree   Op = "kv.delete_tree"
	OpKVLock         Op = "kv.lock"
	OpKVUnlock       Op = "kv.unlock"
	OpSessionCreate  Op = "session.create"
	OpSessionDestroy Op = "session.destroy"
	OpMemberUpsert   Op = "member.upsert"
	OpMemberDelete   Op = "member.delete"
	OpClusterInit    Op = "cluster.init"
	OpServiceUpsert  Op = "service.upsert"
	OpServiceDelete  Op = "service.delete"
	OpServiceDrain   Op = "service.drain"
	OpServiceRollout Op = "service.rollout"
	OpNodeRegister   Op = "node.register"
	OpNodeEligible   Op = "node.eligibility"
	OpReplicaPlan    Op = "replica.plan"
	OpReplicaReport  Op = "replica.report"
	OpPKIInit        Op = "pki.init"
	OpKeyringSet     Op = "pki.keyring"
	OpJoinTokenSet   Op = "join_token.create"
	OpJoinTokenDel   Op = "join_token.delete"
	OpACLBootstrap   Op = "acl.bootstrap"
	OpACLTokenSet    Op = "acl.token.create"
	OpACLTokenDel    Op = "acl.token.delete"
	OpACLPolicySet   Op = "acl.policy.set"
	OpACLPolicyDel   Op = "acl.policy.delete"
	OpEvent          Op = "event"
	OpVIPUpsert      Op = "vip.upsert"
	OpVIPDelete      Op = "vip.delete"
	// OpVIPSetHolder records a VIP's new holder (a claim the leader
	// granted) or, with an empty Holder, its release by node Key.
	OpVIPSetHolder Op = "vip.holder"

	// OpSessionRenew never enters the log: the leader resets the
	// session's TTL timer. It travels the same forwarding path.
	OpSessionRenew Op = "session.renew"
	// OpVIPRenew never enters the log either: the leader extends the
	// holder's lease on VIP ID after confirming it still leads.
	OpVIPRenew Op = "vip.renew"
)

// Command is one state change. Only the fields its Op needs are set.
type Command struct {
	Op      Op                `json:"op"`
	KV      *api.KVPair       `json:"kv,omitempty"`
	Key     string            `json:"key,omitempty"`
	CAS     uint64            `json:"cas,omitempty"`
	Session *api.SessionEntry `json:"session,omitempty"`
	Member  *api.Member       `json:"member,omitempty"`
	Service *api.Service      `json:"service,omitempty"`
	ID      string            `json:"id,omitempty"`
	// Drain is the flag service.drain sets on backend Key of service ID.
	Drain bool `json:"drain,omitempty"`
	// Node is what node.register records.
	Node *api.Node `json:"node,omitempty"`
	// Eligible and NodeDrain are node.eligibility's flags for node ID
	// (nil: unchanged).
	Eligible  *bool `json:"eligible,omitempty"`
	NodeDrain *bool `json:"node_drain,omitempty"`
	// Plan is replica.plan's change.
	Plan *state.ReplicaPlan `json:"plan,omitempty"`
	// Reports are replica.report's statuses from node ID.
	Reports []api.ReplicaStatus `json:"reports,omitempty"`
	// Version, State and Message are service.rollout's progress of
	// service ID.
	Version uint64 `json:"version,omitempty"`
	State   string `json:"state,omitempty"`
	Message string `json:"message,omitempty"`
	// PKI is pki.init's CA; Sealed is pki.keyring's sealed keyring.
	PKI    *state.PKI `json:"pki,omitempty"`
	Sealed []byte     `json:"sealed,omitempty"`
	// JoinToken, ACLToken and Policy are what the token and policy
	// operations create.
	JoinToken *state.JoinTokenEntry `json:"join_token,omitempty"`
	ACLToken  *state.ACLTokenEntry  `json:"acl_token,omitempty"`
	Policy    *api.ACLPolicy        `json:"policy,omitempty"`
	// Event is what the event op records.
	Event *api.Event `json:"event,omitempty"`
	// VIP is what vip.upsert records; Holder is the node a VIP operation
	// is for (vip.holder, vip.renew).
	VIP    *api.VIP `json:"vip,omitempty"`
	Holder string   `json:"holder,omitempty"`
}

// Result is what applying a Command produced.
type Result struct {
	// Index is the Raft log index the command was applied at.
	Index uint64 `json:"index"`
	// OK is false when a conditional write (CAS, lock) did not apply.
	OK bool `json:"ok"`
	// Session is set by session create and renew.
	Session *api.SessionEntry `json:"session,omitempty"`
	// Lease is set by VIP claims, renewals and releases.
	Lease *api.VIPLease `json:"lease,omitempty"`
	// Error is set when the command was invalid; Kind classifies it.
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// Error kinds carried in Result.Kind.
const (
	KindInvalid  = "invalid"
	KindNotFound = "not_found"
	KindConflict = "conflict"
)

// fsm applies committed log entries to the state store.
type fsm struct {
	store   *state.Store
	metrics *metrics

	// applied is the index of the last entry applied; appliedMu/appliedCh
	// let readers wait for an index (appliedCh is closed and replaced on
	// every apply).
	applied   atomic.Uint64
	appliedMu sync.Mutex
	appliedCh chan struct{}
}

func newFSM(store *state.Store, m *metrics) *fsm {
	return &fsm{store: store, metrics: m, appliedCh: make(chan struct{})}
}

func (f *fsm) Apply(l *raft.Log) any {
	start := time.Now()
	if !l.AppendedAt.IsZero() {
		f.metrics.commitLatency.Observe(start.Sub(l.AppendedAt).Seconds())
	}
	at := l.AppendedAt
	if at.IsZero() {
		at = start
	}
	// Events recorded by this entry carry its append time, the same on
	// every server.
	f.store.SetApplyTime(at)
	var res any
	if len(l.Data) > 0 && l.Data[0] == batchMagic {
		res = f.applyPacked(l.Index, at, l.Data)
	} else {
		res = f.apply(l.Index, at, l.Data)
	}
	f.metrics.fsmApply.Observe(time.Since(start).Seconds())
	f.setApplied(l.Index)
	return res
}

// applyPacked applies each command of a packed entry at the entry's index
// and returns their results in order. The proposer packs only single-key
// KV writes, each key at most once, so they share one state transaction.
// Should any of them fail, the transaction is dropped and the commands
// are applied one by one instead, so a failure stays its own command's.
func (f *fsm) applyPacked(idx uint64, at time.Time, data []byte) []*Result {
	raw, err := unpackEntry(data)
	if err != nil {
		// As for an undecodable command: apply nothing, on every replica.
		return []*Result{undecodable(idx, err)}
	}
	cmds := make([]*Command, len(raw))
	decodeErrs := make([]error, len(raw))
	out := make([]*Result, len(raw))
	together := true
	for i, r := range raw {
		cmds[i], decodeErrs[i] = DecodeCommand(r)
		if decodeErrs[i] != nil || !sharesEntry(cmds[i]) {
			together = false
		}
	}
	if together {
		b := f.store.KVBatch(idx)
		for i := range cmds {
			res, err := applyKV(b, idx, cmds[i])
			if err != nil {
				together = false
				break
			}
			out[i] = res
		}
		if together && b.Commit() == nil {
			return out
		}
		b.Abort()
	}
	for i, c := range cmds {
		if decodeErrs[i] != nil {
			out[i] = undecodable(idx, decodeErrs[i])
			continue
		}
		out[i] = f.applyCommand(idx, at, c)
	}
	return out
}

// sharesEntry reports whether c may be packed with others.
func sharesEntry(c *Command) bool {
	switch c.Op {
	case OpKVSet, OpKVCAS, OpKVLock, OpKVUnlock:
		return c.KV != nil
	case OpKVDelete, OpKVDeleteCAS:
		return true
	}
	return false
}

// applyKV applies one single-key KV write within b.
func applyKV(b *state.KVBatch, idx uint64, c *Command) (*Result, error) {
	res := &Result{Index: idx, OK: true}
	var err error
	switch c.Op {
	case OpKVSet:
		err = b.KVSet(c.KV)
	case OpKVCAS:
		res.OK, err = b.KVCAS(c.KV, c.CAS)
	case OpKVDelete:
		err = b.KVDelete(c.Key)
	case OpKVDeleteCAS:
		res.OK, err = b.KVDeleteCAS(c.Key, c.CAS)
	case OpKVLock:
		res.OK, err = b.KVLock(c.KV, c.ID)
	case OpKVUnlock:
		res.OK, err = b.KVUnlock(c.KV, c.ID)
	default:
		err = fmt.Errorf("operation %q cannot share a log entry", c.Op)
	}
	return res, err
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.appliedMu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.appliedMu.Unlock()
}

// waitApplied returns a channel closed after the next apply, and whether
// idx is already applied.
func (f *fsm) waitApplied(idx uint64) (<-chan struct{}, bool) {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.appliedCh, f.applied.Load() >= idx
}

func (f *fsm) apply(idx uint64, at time.Time, data []byte) *Result {
	c, err := DecodeCommand(data)
	if err != nil {
		return undecodable(idx, err)
	}
	return f.applyCommand(idx, at, c)
}

// undecodable is the result of a log entry or command we cannot read: it
// would mean a bug or a newer writer, and applying nothing keeps every
// replica identical.
func undecodable(idx uint64, err error) *Result {
	return &Result{Index: idx, Error: fmt.Sprintf("undecodable log entry: %v", err), Kind: KindInvalid}
}

// applyCommand applies one command at idx. Single-key KV writes go through
// the same code as packed ones, in a transaction of their own.
func (f *fsm) applyCommand(idx uint64, at time.Time, c *Command) *Result {
	if sharesEntry(c) {
		b := f.store.KVBatch(idx)
		defer b.Abort()
		res, err := applyKV(b, idx, c)
		if err == nil {
			err = b.Commit()
		}
		return withError(res, err)
	}
	res := &Result{Index: idx, OK: true}
	var err error
	switch c.Op {
	case OpKVSet, OpKVCAS, OpKVLock, OpKVUnlock:
		err = fmt.Errorf("%s without a key-value pair", c.Op)
	case OpKVDeleteTree:
		err = f.store.KVDeleteTree(idx, c.Key)
	case OpSessionCreate:
		err = f.store.SessionCreate(idx, c.Session)
		if err == nil {
			_, res.Session, err = f.store.SessionGet(nil, c.Session.ID)
		}
	case OpSessionDestroy:
		err = f.store.SessionDestroyAt(idx, c.ID, at)
	case OpMemberUpsert:
		err = f.store.MemberUpsert(idx, c.Member)
	case OpMemberDelete:
		err = f.store.MemberDelete(idx, c.ID)
	case OpClusterInit:
		err = f.store.SetClusterID(idx, c.ID)
	case OpServiceUpsert:
		if err = f.checkService(c.Service); err == nil {
			err = f.store.ServiceUpsert(idx, c.Service)
		}
	case OpServiceDelete:
		err = f.store.ServiceDelete(idx, c.ID)
	case OpServiceDrain:
		err = f.store.ServiceSetDrain(idx, c.ID, c.Key, c.Drain)
	case OpServiceRollout:
		err = f.store.ServiceSetRollout(idx, c.ID, c.Version, c.State, c.Message)
	case OpNodeRegister:
		if c.Node == nil || c.Node.Name == "" {
			err = errors.New("node.register without a node")
		} else {
			err = f.store.NodeRegister(idx, c.Node)
		}
	case OpNodeEligible:
		err = f.store.NodeSetEligibility(idx, c.ID, c.Eligible, c.NodeDrain)
	case OpReplicaPlan:
		if c.Plan == nil {
			err = errors.New("replica.plan without a plan")
		} else {
			err = f.store.ReplicaApplyPlan(idx, c.Plan)
		}
	case OpReplicaReport:
		err = f.store.ReplicaReport(idx, c.ID, c.Reports)
	case OpPKIInit:
		err = f.store.PKIInit(idx, c.PKI)
	case OpKeyringSet:
		err = f.store.PKISetKeyring(idx, c.Sealed)
	case OpJoinTokenSet:
		err = f.store.JoinTokenCreate(idx, c.JoinToken)
	case OpJoinTokenDel:
		err = f.store.JoinTokenDelete(idx, c.ID)
	case OpACLBootstrap:
		err = f.store.ACLBootstrap(idx, c.ACLToken)
	case OpACLTokenSet:
		err = f.store.ACLTokenCreate(idx, c.ACLToken)
	case OpACLTokenDel:
		err = f.store.ACLTokenDelete(idx, c.ID)
	case OpACLPolicySet:
		if err = checkPolicy(c.Policy); err == nil {
			err = f.store.ACLPolicySet(idx, c.Policy)
		}
	case OpACLPolicyDel:
		err = f.store.ACLPolicyDelete(idx, c.ID)
	case OpVIPUpsert:
		if err = spec.ValidateVIP(c.VIP); err == nil {
			v := spec.VIPDefaults(*c.VIP)
			err = f.store.VIPUpsert(idx, &v)
		}
	case OpVIPDelete:
		err = f.store.VIPDelete(idx, c.ID)
	case OpVIPSetHolder:
		res.Lease, err = f.applyVIPHolder(idx, c)
	case OpEvent:
		err = f.store.EventAppend(idx, c.Event)
	default:
		err = fmt.Errorf("unknown operation %q", c.Op)
	}
	return withError(res, err)
}

// withError records err, if any, in res and classifies it.
func withError(res *Result, err error) *Result {
	if err == nil {
		return res
	}
	res.OK = false
	res.Error = err.Error()
	res.Kind = KindInvalid
	switch {
	case errors.Is(err, state.ErrNotFound):
		res.Kind = KindNotFound
	case errors.Is(err, errConflict), errors.Is(err, state.ErrExists):
		res.Kind = KindConflict
	}
	return res
}

// errConflict marks a service whose routes another service owns.
var errConflict = errors.New("conflict")

// checkService validates a service again where it is applied, and refuses
// routes another service already has. Both depend only on the command
// and the replicated state, so every replica decides alike.
func (f *fsm) checkService(svc *api.Service) error {
	if svc == nil {
		return errors.New("service.upsert without a service")
	}
	if err := spec.ValidateService(svc); err != nil {
		return err
	}
	_, all, err := f.store.ServiceList(nil)
	if err != nil {
		return err
	}
	others := make([]*api.Service, 0, len(all))
	for _, e := range all {
		if e.Name != svc.Name {
			others = append(others, &e.Service)
		}
	}
	if msg := spec.RoutesConflict(svc, others); msg != "" {
		return fmt.Errorf("service %q: %s: %w", svc.Name, msg, errConflict)
	}
	return nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	// raft calls Snapshot between applies on the FSM goroutine, so the
	// applied index is exactly the one the snapshot reflects.
	snap := f.store.Snapshot()
	snap.Applied = f.applied.Load()
	return &fsmSnapshot{snap: snap}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	f.setApplied(max(f.store.RestoredApplied(), f.store.LatestIndex()))
	return nil
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persisting snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
