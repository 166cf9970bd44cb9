package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/server"
)

// eventsBatch is how many events a stream reads from the ring at a time.
const eventsBatch = 512

// eventQuery reads the parameters of /v1/events.
func eventQuery(r *http.Request) (after uint64, types []string, limit int, err error) {
	after, _, err = parseUint(r, "index")
	if err != nil {
		return 0, nil, 0, err
	}
	for _, t := range strings.Split(r.URL.Query().Get("type"), ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(api.EventTypes, t) {
			return 0, nil, 0, errorf(http.StatusBadRequest, "type=%q is not an event type (known: %s)", t, strings.Join(api.EventTypes, ", "))
		}
		types = append(types, t)
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, 0, errorf(http.StatusBadRequest, "limit=%q: want a positive number", v)
		}
		limit = n
	}
	return after, types, limit, nil
}

// events answers GET /v1/events: the events after ?index (a blocking query
// that waits for newer ones), or with ?follow a stream of them as JSON
// lines that stays open.
func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	after, types, limit, err := eventQuery(r)
	if err != nil {
		return err
	}
	store := a.cfg.Server.Store()
	if !r.URL.Query().Has("follow") {
		var out []*api.Event
		err := a.blockingQuery(w, r, func(ws memdb.WatchSet) (uint64, error) {
			last, _, evs, err := store.Events(ws, after, types, limit)
			out = evs
			return last, err
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if !r.URL.Query().Has("stale") {
		if err := a.cfg.Server.ConsistentRead(r.Context()); err != nil {
			return err
		}
	}
	return a.streamEvents(w, r, after, types)
}

// streamEvents writes events as JSON lines as they are recorded. A
// reader that falls behind the ring gets an events.lost line and goes on
// from the oldest kept event; one that stops reading is dropped after
// streamWriteTimeout, without holding up anything else.
func (a *API) streamEvents(w http.ResponseWriter, r *http.Request, after uint64, types []string) error {
	store := a.cfg.Server.Store()
	st := startStream(w)
	if st == nil {
		return nil
	}
	write := func(v any) bool {
		line, _ := json.Marshal(v)
		if !st.write(append(line, '\n')) {
			a.logger.Warn("dropping a slow or gone events reader", "remote", r.RemoteAddr)
			return false
		}
		return true
	}
	cursor := after
	for {
		ws := memdb.NewWatchSet()
		ws.Add(store.AbandonCh())
		last, oldest, evs, err := store.Events(ws, cursor, types, eventsBatch)
		if err != nil {
			a.logger.Warn("reading events", "err", err)
			return nil
		}
		if cursor > 0 && oldest > cursor+1 {
			lost := &api.Event{Index: oldest - 1, Type: api.EventsLost, Time: time.Now().UTC(),
				Message: fmt.Sprintf("%d events were dropped from the ring (it keeps the last few thousand) before this reader read them; going on from index %d", oldest-cursor-1, oldest)}
			if !write(lost) {
				return nil
			}
		}
		for _, ev := range evs {
			if !write(ev) {
				return nil
			}
		}
		if len(evs) == eventsBatch {
			cursor = evs[len(evs)-1].Index
		} else {
			cursor = max(cursor, last)
		}
		if !st.flush() {
			return nil
		}
		if len(evs) == eventsBatch {
			continue
		}
		if !a.waitEvents(r, st, ws) {
			return nil
		}
	}
}

// waitEvents waits until ws fires, with a heartbeat every streamHeartbeat
// meanwhile; false when the reader is gone or the API closes.
func (a *API) waitEvents(r *http.Request, st *lineStream, ws memdb.WatchSet) bool {
	ctx, cancel := a.untilQuit(r.Context())
	defer cancel()
	fired := ws.WatchCh(ctx)
	hb := time.NewTicker(streamHeartbeat)
	defer hb.Stop()
	for {
		select {
		case err := <-fired:
			return err == nil
		case <-hb.C:
			if !st.heartbeat() {
				return false
			}
		}
	}
}

// gatewayEventTypes are the events agents report themselves.
var gatewayEventTypes = []string{api.EventBackendEjected, api.EventBackendRestored, api.EventPanicMode}

// postEvent records an event a node reports about its own gateway
// (POST /v1/events, node certificates only).
func (a *API) postEvent(w http.ResponseWriter, r *http.Request) error {
	var ev api.Event
	if err := decodeJSONLimit(r, &ev, 16<<10); err != nil {
		return err
	}
	if !slices.Contains(gatewayEventTypes, ev.Type) {
		return errorf(http.StatusBadRequest, "type: agents report only %s, not %q", strings.Join(gatewayEventTypes, ", "), ev.Type)
	}
	if len(ev.Subject) > 512 || len(ev.Message) > 1024 || len(ev.Attrs) > 8 {
		return errorf(http.StatusBadRequest, "event too large: subject at most 512 bytes, message 1024, at most 8 attrs")
	}
	attrs := map[string]string{}
	for k, v := range ev.Attrs {
		if len(k) > 64 || len(v) > 256 {
			return errorf(http.StatusBadRequest, "attrs.%.64s: keys at most 64 bytes, values 256", k)
		}
		attrs[k] = v
	}
	if id := who(r); id.kind == kindNode {
		attrs["gateway"] = id.name // who says so, whatever the body claims
	}
	cmd := &server.Command{Op: server.OpEvent, Event: &api.Event{Type: ev.Type, Subject: ev.Subject, Message: ev.Message, Attrs: attrs}}
	res, err := a.apply(r, cmd)
	if err != nil {
		return err
	}
	a.setIndexHeaders(w, res.Index)
	writeJSON(w, http.StatusOK, true)
	return nil
}
