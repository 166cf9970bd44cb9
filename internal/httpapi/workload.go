package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/server"
)

// maxReportBytes bounds a node's registration or replica report.
const maxReportBytes = 4 << 20

func (a *API) replicaList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var out []*api.Replica
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().Replicas(ws, q.Get("service"), q.Get("node"))
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	if svc, node := q.Get("service"), q.Get("node"); svc != "" && node != "" {
		out = slices.DeleteFunc(out, func(r *api.Replica) bool { return r.Node != node })
	}
	authz := who(r).authz
	out = slices.DeleteFunc(out, func(r *api.Replica) bool { return !authz.Allow(acl.ResourceService, r.Service, acl.Read) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) nodeList(w http.ResponseWriter, r *http.Request) error {
	var out []*api.Node
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().Nodes(ws)
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	authz := who(r).authz
	out = slices.DeleteFunc(out, func(n *api.Node) bool { return !authz.Allow(acl.ResourceNode, n.Name, acl.Read) })
	if r.URL.Query().Has("usage") {
		out = a.nodeUsage(r.Context(), out)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// nodeUsage returns copies of nodes with the CPU their replicas use now,
// as each node's agent reports it (nodes that do not answer keep none).
func (a *API) nodeUsage(ctx context.Context, nodes []*api.Node) []*api.Node {
	out := make([]*api.Node, len(nodes))
	names := make([]string, len(nodes))
	for i, n := range nodes {
		c := *n
		out[i], names[i] = &c, n.Name
	}
	a.askAgents(ctx, names, func(ctx context.Context, i int, c *api.Client) error {
		var usage []api.ReplicaUsage
		if c == nil {
			if a.cfg.Usage != nil {
				usage = a.cfg.Usage()
			}
		} else {
			var err error
			if usage, err = c.AgentReplicas(ctx); err != nil {
				return err
			}
		}
		var sum float64
		for _, u := range usage {
			sum += u.CPU
		}
		out[i].UsageCPU = &sum
		return nil
	})
	return out
}

func (a *API) nodeGet(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var out *api.Node
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().Nodes(ws)
		out = nil
		for _, n := range list {
			if n.Name == name {
				out = n
			}
		}
		return idx, err
	})
	if err != nil {
		return err
	}
	if out == nil {
		return errorf(http.StatusNotFound, "no node %q", name)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// nodeRegister records the attributes a node reports about itself.
func (a *API) nodeRegister(w http.ResponseWriter, r *http.Request) error {
	var n api.Node
	if err := decodeJSONLimit(r, &n, maxReportBytes); err != nil {
		return err
	}
	if n.Name != r.PathValue("name") {
		return errorf(http.StatusBadRequest, "name: %q in the body differs from %q in the path", n.Name, r.PathValue("name"))
	}
	res, err := a.apply(r, &server.Command{Op: server.OpNodeRegister, Node: &n})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

// nodeReport records a node's report about its replicas.
func (a *API) nodeReport(w http.ResponseWriter, r *http.Request) error {
	var st []api.ReplicaStatus
	if err := decodeJSONLimit(r, &st, maxReportBytes); err != nil {
		return err
	}
	res, err := a.apply(r, &server.Command{Op: server.OpReplicaReport, ID: r.PathValue("name"), Reports: st})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

// nodeFlag sets a node's eligibility or drain flag from ?enable=.
func (a *API) nodeFlag(drain bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := r.URL.Query().Get("enable")
		on, err := strconv.ParseBool(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "enable=%q: want true or false", v)
		}
		cmd := &server.Command{Op: server.OpNodeEligible, ID: r.PathValue("name")}
		if drain {
			cmd.NodeDrain = &on
			if !on {
				// Ending a drain makes the node eligible again.
				eligible := true
				cmd.Eligible = &eligible
			}
		} else {
			cmd.Eligible = &on
		}
		res, err := a.apply(r, cmd)
		if err != nil {
			return err
		}
		a.setIndexHeaders(w, res.Index)
		writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
		return nil
	}
}

// replicaLogs serves a replica's log from this agent's node.
func (a *API) replicaLogs(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Logs == nil {
		return errorf(http.StatusNotFound, "this agent runs no replicas")
	}
	q := r.URL.Query()
	stream := q.Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	tail := 0
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "tail=%q: want a number of lines", v)
		}
		tail = n
	}
	follow := q.Has("follow") && q.Get("follow") != "false"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := a.cfg.Logs(r.Context(), w, r.PathValue("id"), stream, tail, follow); err != nil {
		return errorf(http.StatusNotFound, "%v", err)
	}
	return nil
}
