package httpapi

import (
	"net/http"
	"time"
)

// Stream limits, for the event stream and the log monitor.
const (
	// streamWriteTimeout is how long a write may block before the reader
	// is dropped as too slow.
	streamWriteTimeout = 10 * time.Second
	// streamHeartbeat is how often an idle stream writes a newline, so
	// that proxies and readers see it is alive.
	streamHeartbeat = 30 * time.Second
)

// lineStream writes JSON lines to a client that reads them as they come:
// each write has a deadline, so a reader that stops reading is dropped
// instead of holding a goroutine forever.
type lineStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startStream sends the stream's headers; nil when the client is gone.
func startStream(w http.ResponseWriter) *lineStream {
	s := &lineStream{w: w, rc: http.NewResponseController(w)}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if s.rc.Flush() != nil {
		return nil
	}
	return s
}

// write sends p (one or more lines); false when the reader is too slow
// or gone.
func (s *lineStream) write(p []byte) bool {
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := s.w.Write(p)
	return err == nil
}

// flush pushes what was written; false when the reader is gone.
func (s *lineStream) flush() bool { return s.rc.Flush() == nil }

// heartbeat writes the blank line readers skip; false when the reader is
// gone.
func (s *lineStream) heartbeat() bool { return s.write([]byte("\n")) && s.flush() }
