package server

import (
	"fmt"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
)

// Session TTL bounds.
const (
	MinSessionTTL = time.Second
	MaxSessionTTL = 24 * time.Hour
)

// sessionTimers expires sessions on the leader. Expired IDs are sent on
// expired, which the leader loop drains and destroys through Raft.
type sessionTimers struct {
	expired chan string

	// mu guards timers.
	mu     sync.Mutex
	timers map[string]*time.Timer
}

func newSessionTimers() *sessionTimers {
	return &sessionTimers{expired: make(chan string, 256), timers: map[string]*time.Timer{}}
}

// reset (re)arms the TTL timer of se; sessions without a TTL have none.
func (t *sessionTimers) reset(se *api.SessionEntry) {
	if se == nil || se.TTL == "" {
		return
	}
	ttl, err := time.ParseDuration(se.TTL)
	if err != nil || ttl <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tm, ok := t.timers[se.ID]; ok {
		tm.Reset(ttl)
		return
	}
	id := se.ID
	t.timers[id] = time.AfterFunc(ttl, func() {
		select {
		case t.expired <- id:
		default: // the leader loop is gone or swamped; it rescans on start
		}
	})
}

func (t *sessionTimers) stop(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tm, ok := t.timers[id]; ok {
		tm.Stop()
		delete(t.timers, id)
	}
}

func (t *sessionTimers) stopAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tm := range t.timers {
		tm.Stop()
		delete(t.timers, id)
	}
}

// renewSession resets the TTL of a session on the leader.
func (s *Server) renewSession(id string) (*Result, error) {
	_, se, err := s.store.SessionGet(nil, id)
	if err != nil {
		return nil, err
	}
	if se == nil {
		return &Result{Error: fmt.Sprintf("session %q not found", id), Kind: KindNotFound}, nil
	}
	s.sessions.reset(se)
	return &Result{OK: true, Session: se}, nil
}

// ValidateTTL checks a session TTL string.
func ValidateTTL(ttl string) error {
	if ttl == "" {
		return nil
	}
	d, err := time.ParseDuration(ttl)
	if err != nil {
		return fmt.Errorf("invalid TTL %q: %v", ttl, err)
	}
	if d < MinSessionTTL || d > MaxSessionTTL {
		return fmt.Errorf("TTL %s must be between %s and %s", d, MinSessionTTL, MaxSessionTTL)
	}
	return nil
}
