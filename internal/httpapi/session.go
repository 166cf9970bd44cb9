package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/spec"
)

// sessionRequest is the body of /v1/session/create: Consul's fields, so
// Consul clients work. LockDelay may be a duration string ("15s") or a
// number (seconds below 1000, else nanoseconds), as in Consul.
type sessionRequest struct {
	Name          string
	Node          string
	LockDelay     json.RawMessage
	Behavior      string
	TTL           string
	Namespace     string
	Checks        []string
	NodeChecks    []string
	ServiceChecks []api.ServiceCheck
}

func parseLockDelay(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("LockDelay %q is not a duration", s)
		}
		return d, nil
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("LockDelay must be a duration string or a number")
	}
	if n < 1000 {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.Duration(n), nil
}

func (a *API) sessionCreate(w http.ResponseWriter, r *http.Request) error {
	var req sessionRequest
	if err := decodeJSON(r, &req); err != nil && !errors.Is(err, errEmptyBody) {
		return err
	}
	delay, err := parseLockDelay(req.LockDelay)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if delay < 0 || delay > time.Minute {
		return errorf(http.StatusBadRequest, "LockDelay %s must be between 0s and 1m", delay)
	}
	switch req.Behavior {
	case "", api.SessionBehaviorRelease, api.SessionBehaviorDelete:
	default:
		return errorf(http.StatusBadRequest, "Behavior %q must be %q or %q", req.Behavior, api.SessionBehaviorRelease, api.SessionBehaviorDelete)
	}
	if err := server.ValidateTTL(req.TTL); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	node := req.Node
	if node == "" && (!a.cfg.Secure || who(r).kind == kindNode || proxiedByNode(r)) {
		// Only a node of the cluster may say whom it proxies for.
		node = r.Header.Get(headerOriginNode)
	}
	if node == "" {
		node = a.cfg.NodeName
	}
	se := &api.SessionEntry{
		Name: req.Name, Node: node, LockDelay: delay, Behavior: req.Behavior, TTL: req.TTL,
		Namespace: req.Namespace, Checks: req.Checks, NodeChecks: req.NodeChecks, ServiceChecks: req.ServiceChecks,
	}
	res, err := a.apply(r, &server.Command{Op: server.OpSessionCreate, Session: se})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]string{"ID": res.Session.ID})
	return nil
}

func (a *API) sessionDestroy(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpSessionDestroy, ID: r.PathValue("id")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, true)
	return nil
}

func (a *API) sessionRenew(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpSessionRenew, ID: r.PathValue("id")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, []*api.SessionEntry{res.Session})
	return nil
}

func (a *API) sessionInfo(w http.ResponseWriter, r *http.Request) error {
	var out []*api.SessionEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, se, err := a.cfg.Server.Store().SessionGet(ws, r.PathValue("id"))
		out = []*api.SessionEntry{}
		if se != nil {
			out = append(out, se)
		}
		return idx, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) sessionList(w http.ResponseWriter, r *http.Request) error {
	var out []*api.SessionEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().SessionList(ws, r.PathValue("node"))
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) stateMembers(w http.ResponseWriter, r *http.Request) error {
	var out []*api.Member
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().Members(ws)
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// --- status, agent, operator ---

func (a *API) statusLeader(w http.ResponseWriter, r *http.Request) error {
	name, addr := a.cfg.Server.Leader()
	q := r.URL.Query()
	switch {
	case q.Has("node"):
		writeJSON(w, http.StatusOK, name)
	case q.Has("api"):
		apiAddr := ""
		for _, m := range a.cfg.Gossip.Members() {
			if m.Name == name {
				apiAddr = m.APIAddr
			}
		}
		writeJSON(w, http.StatusOK, apiAddr)
	default:
		writeJSON(w, http.StatusOK, addr) // Consul answers the Raft address
	}
	return nil
}

func (a *API) statusPeers(w http.ResponseWriter, r *http.Request) error {
	cfg, err := a.cfg.Server.Configuration()
	if err != nil {
		return err
	}
	peers := []string{}
	for _, s := range cfg.Servers {
		peers = append(peers, s.Address)
	}
	writeJSON(w, http.StatusOK, peers)
	return nil
}

func (a *API) statusHealth(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (a *API) raftConfiguration(w http.ResponseWriter, r *http.Request) error {
	cfg, err := a.cfg.Server.Configuration()
	if err != nil {
		return err
	}
	if r.URL.Query().Has("stats") {
		a.raftStats(r.Context(), &cfg)
	}
	a.setIndexHeaders(w, cfg.Index)
	writeJSON(w, http.StatusOK, cfg)
	return nil
}

// raftStats asks every server of cfg for its term and applied index and
// computes how far each is behind the leader's commit index.
func (a *API) raftStats(ctx context.Context, cfg *api.RaftConfiguration) {
	names := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		names[i] = s.Node
	}
	selves := make([]*api.AgentSelf, len(names))
	errs := a.askAgents(ctx, names, func(ctx context.Context, i int, c *api.Client) error {
		if names[i] == a.cfg.NodeName {
			self := a.cfg.Self()
			selves[i] = &self
			return nil
		}
		var err error
		selves[i], err = c.Self(ctx)
		return err
	})
	var commit uint64
	for _, self := range selves {
		if self != nil && self.Raft != nil && self.Raft["state"] == "Leader" {
			commit, _ = strconv.ParseUint(self.Raft["commit_index"], 10, 64)
		}
	}
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if errs[i] != nil || selves[i] == nil || selves[i].Raft == nil {
			if errs[i] != nil {
				s.StatsError = errs[i].Error()
			}
			continue
		}
		s.Term = selves[i].Raft["term"]
		s.AppliedIndex, _ = strconv.ParseUint(selves[i].Raft["applied_index"], 10, 64)
		if commit > 0 {
			lag := int64(commit) - int64(s.AppliedIndex)
			s.Lag = &lag
		}
	}
}

// agentClient is a client of another agent's API (addr, host:port) as this
// agent: with its certificate when the cluster is secured, and token when
// not empty.
func (a *API) agentClient(addr, token string) (*api.Client, error) {
	scheme := "http://"
	if a.cfg.ClientTLS != nil {
		scheme = "https://"
	}
	return api.NewClientConfig(api.Config{Address: scheme + addr, Token: token, TLSConfig: a.cfg.ClientTLS, IgnoreEnv: true})
}

// askAgents calls f, in parallel and for at most a second each, with a
// client of the API of each named agent (found in gossip; this agent's
// own name gets a nil client) and returns f's error for each.
func (a *API) askAgents(ctx context.Context, names []string, f func(ctx context.Context, i int, c *api.Client) error) []error {
	addrs := map[string]string{}
	for _, m := range a.cfg.Gossip.Members() {
		if m.Status == api.MemberAlive {
			addrs[m.Name] = m.APIAddr
		}
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if name == a.cfg.NodeName {
				errs[i] = f(cctx, i, nil)
				return
			}
			addr, ok := addrs[name]
			if !ok || addr == "" {
				errs[i] = fmt.Errorf("%s is not a live member", name)
				return
			}
			c, err := a.agentClient(addr, "")
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			errs[i] = f(cctx, i, c)
		})
	}
	wg.Wait()
	return errs
}

func (a *API) agentSelf(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.cfg.Self())
	return nil
}

func (a *API) agentMembers(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.cfg.Gossip.Members())
	return nil
}

// --- internal: followers reaching the leader ---

// validateCommand refuses forwarded commands that lack what their
// operation needs, so nothing malformed reaches the log.
func validateCommand(c *server.Command) error {
	switch c.Op {
	case server.OpKVSet, server.OpKVCAS, server.OpKVLock, server.OpKVUnlock:
		if c.KV == nil {
			return errorf(http.StatusBadRequest, "command %s needs kv", c.Op)
		}
		if err := validateKey(c.KV.Key, false); err != nil {
			return err
		}
		if len(c.KV.Value) > MaxValueBytes {
			return errorf(http.StatusRequestEntityTooLarge, "value is larger than the limit of %d bytes", MaxValueBytes)
		}
	case server.OpSessionCreate:
		if c.Session == nil {
			return errorf(http.StatusBadRequest, "command %s needs session", c.Op)
		}
	case server.OpMemberUpsert:
		if c.Member == nil {
			return errorf(http.StatusBadRequest, "command %s needs member", c.Op)
		}
	case server.OpServiceUpsert:
		if c.Service == nil {
			return errorf(http.StatusBadRequest, "command %s needs service", c.Op)
		}
		if err := spec.ValidateService(c.Service); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	case server.OpServiceDelete, server.OpServiceDrain, server.OpServiceRollout, server.OpNodeEligible, server.OpReplicaReport:
	case server.OpNodeRegister:
		if c.Node == nil || c.Node.Name == "" {
			return errorf(http.StatusBadRequest, "command %s needs node", c.Op)
		}
	case server.OpReplicaPlan:
		if c.Plan == nil {
			return errorf(http.StatusBadRequest, "command %s needs plan", c.Op)
		}
	case server.OpKVDelete, server.OpKVDeleteCAS, server.OpKVDeleteTree, server.OpSessionDestroy,
		server.OpSessionRenew, server.OpMemberDelete, server.OpClusterInit:
	case server.OpVIPUpsert:
		if c.VIP == nil {
			return errorf(http.StatusBadRequest, "command %s needs vip", c.Op)
		}
		if err := spec.ValidateVIP(c.VIP); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	case server.OpVIPDelete, server.OpVIPSetHolder, server.OpVIPRenew:
	case server.OpPKIInit, server.OpKeyringSet, server.OpJoinTokenSet, server.OpJoinTokenDel, server.OpACLBootstrap,
		server.OpACLTokenSet, server.OpACLTokenDel, server.OpACLPolicySet, server.OpACLPolicyDel, server.OpEvent:
		// Checked where they are applied; only servers send them.
	default:
		return errorf(http.StatusBadRequest, "unknown command %q", c.Op)
	}
	return nil
}

func (a *API) internalApplyBatch(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Server == nil || !a.cfg.Server.IsLeader() {
		return server.ErrNotLeader
	}
	// A batch holds at most 1 MiB of commands plus one more that may be a
	// maximal value on its own.
	const limit = 4 << 20
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading batch: %v", err)
	}
	if len(body) > limit {
		return errorf(http.StatusRequestEntityTooLarge, "batch is larger than the limit of %d bytes", limit)
	}
	raw, err := server.UnpackCommands(body)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	cmds := make([]*server.Command, len(raw))
	for i, data := range raw {
		c, err := server.DecodeCommand(data)
		if err != nil {
			return errorf(http.StatusBadRequest, "command %d: %v", i, err)
		}
		if err := validateCommand(c); err != nil {
			return fmt.Errorf("command %d: %w", i, err)
		}
		cmds[i] = c
	}
	writeJSON(w, http.StatusOK, a.cfg.Server.ApplyBatchLocal(r.Context(), cmds, raw))
	return nil
}

func (a *API) internalReadIndex(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Server == nil {
		return server.ErrNotLeader
	}
	idx, err := a.cfg.Server.ReadIndexLocal()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"Index": idx})
	return nil
}
