package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/spec"
)

// maxServiceBytes bounds a service spec in a request body.
const maxServiceBytes = 4 << 20

func (a *API) serviceList(w http.ResponseWriter, r *http.Request) error {
	var out []*api.ServiceEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		var idx uint64
		var list []*api.ServiceEntry
		var err error
		if r.URL.Query().Has("resolve") {
			idx, list, err = a.cfg.Server.Store().ServiceListResolved(ws)
		} else {
			idx, list, err = a.cfg.Server.Store().ServiceList(ws)
		}
		out = list
		return idx, err
	})
	if err != nil {
		return err
	}
	authz := who(r).authz
	out = slices.DeleteFunc(out, func(e *api.ServiceEntry) bool { return !authz.Allow(acl.ResourceService, e.Name, acl.Read) })
	if out == nil {
		out = []*api.ServiceEntry{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) serviceGet(w http.ResponseWriter, r *http.Request) error {
	var out *api.ServiceEntry
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, e, err := a.cfg.Server.Store().ServiceGet(ws, r.PathValue("name"))
		out = e
		return idx, err
	})
	if err != nil {
		return err
	}
	if out == nil {
		return errorf(http.StatusNotFound, "no service %q", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// servicePut creates or replaces a service from a JSON body. The name in
// the body may be left out; when present it must match the path.
func (a *API) servicePut(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxServiceBytes+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > maxServiceBytes {
		return errorf(http.StatusRequestEntityTooLarge, "service spec is larger than the limit of %d bytes", maxServiceBytes)
	}
	name := r.PathValue("name")
	svc, err := spec.ParseJSONService(withName(body, name))
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if svc.Name != name {
		return errorf(http.StatusBadRequest, "name: %q in the body differs from %q in the path", svc.Name, name)
	}
	res, err := a.apply(r, &server.Command{Op: server.OpServiceUpsert, Service: svc})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

func (a *API) serviceDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := a.apply(r, &server.Command{Op: server.OpServiceDelete, ID: r.PathValue("name")})
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
	return nil
}

// serviceDrain sets (drain) or clears (enable) a backend's drain flag;
// the backend is named by ?backend=host:port.
func (a *API) serviceDrain(drain bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		backend := r.URL.Query().Get("backend")
		if backend == "" {
			return errorf(http.StatusBadRequest, "missing ?backend=host:port")
		}
		res, err := a.apply(r, &server.Command{Op: server.OpServiceDrain, ID: r.PathValue("name"), Key: backend, Drain: drain})
		if err != nil {
			return err
		}
		a.setIndexHeaders(w, res.Index)
		writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
		return nil
	}
}

// withName adds "name" to a JSON object that lacks it; anything else is
// returned as it is, for the parser to judge.
func withName(body []byte, name string) []byte {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return body
	}
	if _, ok := obj["name"]; ok {
		return body
	}
	obj["name"], _ = json.Marshal(name)
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}
