package httpapi

import (
	"io"
	"net/http"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/spec"
)

// maxVIPBytes bounds a VIP spec's JSON body.
const maxVIPBytes = 64 << 10

func (a *API) vipList(w http.ResponseWriter, r *http.Request) error {
	var out []*api.VIPEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, list, err := a.cfg.Server.Store().VIPs(ws)
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []*api.VIPEntry{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) vipGet(w http.ResponseWriter, r *http.Request) error {
	var out *api.VIPEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, e, err := a.cfg.Server.Store().VIP(ws, r.PathValue("name"))
		out = e
		return idx, err
	})
	if err != nil {
		return err
	}
	if out == nil {
		return errorf(http.StatusNotFound, "no vip %q", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// vipPut creates or replaces a VIP from a JSON body; the name in the body
// may be left out, and when present must match the path.
func (a *API) vipPut(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxVIPBytes+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > maxVIPBytes {
		return errorf(http.StatusRequestEntityTooLarge, "vip spec is larger than the limit of %d bytes", maxVIPBytes)
	}
	name := r.PathValue("name")
	v, err := spec.ParseJSONVIP(withName(body, name))
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if v.Name != name {
		return errorf(http.StatusBadRequest, "name: %q in the body differs from %q in the path", v.Name, name)
	}
	res, err := a.apply(r, &server.Command{Op: server.OpVIPUpsert, VIP: v})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

func (a *API) vipDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpVIPDelete, ID: r.PathValue("name")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

// vipLease serves claim, renew and release for the node named by ?node=.
func (a *API) vipLease(op string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		node := r.URL.Query().Get("node")
		if node == "" {
			return errorf(http.StatusBadRequest, "missing ?node=NAME")
		}
		name, reason := r.PathValue("name"), r.URL.Query().Get("reason")
		srv := a.cfg.Server
		var l *api.VIPLease
		var err error
		switch op {
		case "claim":
			l, err = srv.VIPClaim(r.Context(), name, node, reason)
		case "renew":
			l, err = srv.VIPRenew(r.Context(), name, node)
		default:
			l, err = srv.VIPRelease(r.Context(), name, node, reason)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, l)
		return nil
	}
}
