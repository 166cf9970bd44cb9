package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// monitorBuffer is how many log lines a monitor reader may lag behind
// before lines are dropped for it.
const monitorBuffer = 512

// agentMonitor streams this agent's log records at ?level and above
// (default info) as JSON lines until the client goes away. A reader that
// falls behind loses lines and is told how many.
func (a *API) agentMonitor(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Monitor == nil {
		return errorf(http.StatusNotFound, "this agent has no log monitor")
	}
	level := slog.LevelInfo
	if v := r.URL.Query().Get("level"); v != "" {
		if err := level.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return errorf(http.StatusBadRequest, "level=%q is not one of debug, info, warn, error", v)
		}
	}
	sub := a.cfg.Monitor.Subscribe(level, monitorBuffer)
	defer sub.Close()
	st := startStream(w)
	if st == nil {
		return nil
	}
	ctx, cancel := a.untilQuit(r.Context())
	defer cancel()
	hb := time.NewTicker(streamHeartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			if !st.heartbeat() {
				return nil
			}
		case line := <-sub.C:
			if n := sub.Dropped(); n > 0 {
				note, _ := json.Marshal(map[string]any{"time": time.Now().UTC(), "level": "WARN",
					"msg": fmt.Sprintf("monitor: %d log lines were dropped because this reader fell behind", n)})
				if !st.write(append(note, '\n')) {
					return nil
				}
			}
			if !st.write(line) {
				return nil
			}
			// Send what else is queued before flushing.
			for more := true; more; {
				select {
				case l := <-sub.C:
					if !st.write(l) {
						return nil
					}
				default:
					more = false
				}
			}
			if !st.flush() {
				return nil
			}
		}
	}
}
