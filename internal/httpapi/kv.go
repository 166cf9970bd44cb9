package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/acl"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/state"
)

// HeaderLockIndex carries the fencing token of a successful ?acquire: the
// Raft index of the acquisition. It only ever rises, across all keys and
// leaders, so a downstream system can refuse a holder whose token is lower
// than one it has already seen.
const HeaderLockIndex = "X-Herd-Lock-Index"

// validateKey checks a KV key: at most 1 KiB of valid UTF-8 without
// control characters.
func validateKey(key string, allowEmpty bool) error {
	if key == "" && !allowEmpty {
		return errorf(http.StatusBadRequest, "missing key name")
	}
	if len(key) > MaxKeyBytes {
		return errorf(http.StatusRequestEntityTooLarge, "key is %d bytes; the limit is %d", len(key), MaxKeyBytes)
	}
	if !utf8.ValidString(key) {
		return errorf(http.StatusBadRequest, "key is not valid UTF-8")
	}
	for i, c := range key {
		if unicode.IsControl(c) {
			return errorf(http.StatusBadRequest, "key has a control character (%U) at byte %d", c, i)
		}
	}
	return nil
}

func kvKey(r *http.Request) string {
	return strings.TrimPrefix(r.PathValue("key"), "/")
}

func (a *API) kvGet(w http.ResponseWriter, r *http.Request) error {
	key := kvKey(r)
	q := r.URL.Query()
	recurse, keys := q.Has("recurse"), q.Has("keys")
	if err := validateKey(key, recurse || keys); err != nil {
		return err
	}
	store := a.cfg.Server.Store()
	a.metrics.kvOps.WithLabelValues("get").Inc()
	if recurse || keys {
		var entries []*api.KVPair
		err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
			idx, out, err := store.KVList(ws, key)
			entries = out
			return idx, err
		})
		if err != nil {
			return err
		}
		authz := who(r).authz
		entries = slices.DeleteFunc(entries, func(e *api.KVPair) bool { return !authz.Allow(acl.ResourceKV, e.Key, acl.Read) })
		if len(entries) == 0 {
			w.WriteHeader(http.StatusNotFound)
			return nil
		}
		if keys {
			writeJSON(w, http.StatusOK, state.KVKeys(entries, key, q.Get("separator")))
			return nil
		}
		writeJSON(w, http.StatusOK, entries)
		return nil
	}
	var entry *api.KVPair
	err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
		idx, e, err := store.KVGet(ws, key)
		entry = e
		return idx, err
	})
	if err != nil {
		return err
	}
	if entry == nil {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	if q.Has("raw") {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(entry.Value)
		return nil
	}
	writeJSON(w, http.StatusOK, []*api.KVPair{entry})
	return nil
}

func (a *API) kvPut(w http.ResponseWriter, r *http.Request) error {
	key := kvKey(r)
	if err := validateKey(key, false); err != nil {
		return err
	}
	q := r.URL.Query()
	flags, _, err := parseUint(r, "flags")
	if err != nil {
		return err
	}
	cas, hasCAS, err := parseUint(r, "cas")
	if err != nil {
		return err
	}
	value, err := io.ReadAll(io.LimitReader(r.Body, MaxValueBytes+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "reading value: %v", err)
	}
	if len(value) > MaxValueBytes {
		return errorf(http.StatusRequestEntityTooLarge, "value is larger than the limit of %d bytes", MaxValueBytes)
	}
	entry := &api.KVPair{Key: key, Flags: flags, Value: value}
	cmd := &server.Command{Op: server.OpKVSet, KV: entry}
	op := "put"
	switch {
	case q.Has("acquire"):
		cmd.Op, cmd.ID, op = server.OpKVLock, q.Get("acquire"), "acquire"
	case q.Has("release"):
		cmd.Op, cmd.ID, op = server.OpKVUnlock, q.Get("release"), "release"
	case hasCAS:
		cmd.Op, cmd.CAS, op = server.OpKVCAS, cas, "cas"
	}
	if (op == "acquire" || op == "release") && cmd.ID == "" {
		return errorf(http.StatusBadRequest, "?%s needs a session ID", op)
	}
	a.metrics.kvOps.WithLabelValues(op).Inc()
	res, err := a.apply(r, cmd)
	if err != nil {
		return err
	}
	if op == "acquire" && res.OK {
		w.Header().Set(HeaderLockIndex, strconv.FormatUint(res.Index, 10))
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, res.OK)
	return nil
}

func (a *API) kvDelete(w http.ResponseWriter, r *http.Request) error {
	key := kvKey(r)
	q := r.URL.Query()
	recurse := q.Has("recurse")
	if err := validateKey(key, recurse); err != nil {
		return err
	}
	cas, hasCAS, err := parseUint(r, "cas")
	if err != nil {
		return err
	}
	cmd := &server.Command{Op: server.OpKVDelete, Key: key}
	op := "delete"
	switch {
	case recurse:
		if !who(r).authz.AllowPrefix(acl.ResourceKV, key, acl.Write) {
			return deny(who(r), fmt.Sprintf("kv write on every key under %q", key))
		}
		cmd.Op, op = server.OpKVDeleteTree, "delete_tree"
	case hasCAS:
		cmd.Op, cmd.CAS, op = server.OpKVDeleteCAS, cas, "delete_cas"
	}
	a.metrics.kvOps.WithLabelValues(op).Inc()
	res, err := a.apply(r, cmd)
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, res.OK)
	return nil
}

// apply commits cmd and turns a rejected command into a 4xx error.
func (a *API) apply(r *http.Request, cmd *server.Command) (*server.Result, error) {
	res, err := a.cfg.Server.Apply(r.Context(), cmd)
	if err != nil {
		return nil, err
	}
	return res, resultError(res)
}

func resultError(res *server.Result) error {
	if res.Error == "" {
		return nil
	}
	switch res.Kind {
	case server.KindNotFound:
		return &httpError{code: http.StatusNotFound, msg: res.Error}
	case server.KindConflict:
		return &httpError{code: http.StatusConflict, msg: res.Error}
	}
	return &httpError{code: http.StatusBadRequest, msg: res.Error}
}
