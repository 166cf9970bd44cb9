package httpapi

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Blocking query limits (Consul's).
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// HeaderIndex is herd's index header; X-Consul-Index carries the same.
const HeaderIndex = "X-Herd-Index"

// queryFunc runs a read against the state store, adding to ws what would
// make its answer change, and returns the index of the answer.
type queryFunc func(ws memdb.WatchSet) (uint64, error)

// blockingQuery runs q with Consul's semantics: unless ?stale is given the
// read is linearizable; with ?index=N it waits (up to ?wait, default 5m,
// at most 10m) until the answer's index is greater than N. It sets the index
// headers on w.
func (a *API) blockingQuery(w http.ResponseWriter, r *http.Request, q queryFunc) error {
	srv := a.cfg.Server
	minIndex, hasIndex, err := parseUint(r, "index")
	if err != nil {
		return err
	}
	wait := defaultWait
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := parseDuration(v)
		if err != nil || d < 0 {
			return errorf(http.StatusBadRequest, "query parameter wait=%q is not a duration", v)
		}
		wait = min(d, maxWait)
	}
	if !r.URL.Query().Has("stale") {
		if err := srv.ConsistentRead(r.Context()); err != nil {
			return err
		}
	}
	ctx, stop := a.untilQuit(r.Context())
	defer stop()
	var cancel context.CancelFunc = func() {}
	if hasIndex && minIndex > 0 {
		wait += time.Duration(rand.Int64N(int64(wait/16) + 1))
		ctx, cancel = context.WithTimeout(ctx, wait)
	}
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		ws.Add(srv.Store().AbandonCh())
		idx, err := q(ws)
		if err != nil {
			return err
		}
		// As in Consul: block while the answer is not newer than the
		// client's index (an index ahead of ours also waits).
		if !hasIndex || minIndex == 0 || idx > minIndex {
			a.setIndexHeaders(w, idx)
			return nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			if r.Context().Err() != nil {
				return r.Context().Err()
			}
			// Wait time over: answer with the current state.
			idx, err = q(nil)
			if err != nil {
				return err
			}
			a.setIndexHeaders(w, idx)
			return nil
		}
	}
}

func (a *API) setIndexHeaders(w http.ResponseWriter, idx uint64) {
	h := w.Header()
	s := strconv.FormatUint(idx, 10)
	h.Set(HeaderIndex, s)
	h.Set("X-Consul-Index", s)
	leader, _ := a.cfg.Server.Leader()
	h.Set("X-Consul-KnownLeader", strconv.FormatBool(leader != ""))
	h.Set("X-Consul-LastContact", strconv.FormatInt(a.cfg.Server.LastContact().Milliseconds(), 10))
}
