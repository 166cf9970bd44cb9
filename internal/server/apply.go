package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// PathReadIndex is the internal HTTP path followers use to ask the leader
// for its read index, served by the httpapi package with ReadIndexLocal.
// Writes travel over PathApplyBatch.
const PathReadIndex = "/v1/internal/read-index"

// StatusNotLeader is the HTTP status an internal endpoint answers when the
// receiving server is not (or no longer) the leader; the sender retries
// elsewhere. The command was not applied.
const StatusNotLeader = http.StatusMisdirectedRequest

// Errors that map to HTTP statuses.
var (
	// ErrNotLeader: this server cannot serve a leader-only request; the
	// request had no effect and may be retried.
	ErrNotLeader = errors.New("not the leader")
	// ErrUnknownOutcome: leadership was lost after the write was
	// proposed; it may or may not be applied.
	ErrUnknownOutcome = errors.New("leadership lost while committing: the write may or may not have been applied")
)

// Apply commits cmd through Raft, forwarding it to the leader when this
// server is a follower, and waits until it is applied. It waits up to the
// hold timeout for a leader.
func (s *Server) Apply(parent context.Context, cmd *Command) (*Result, error) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.HoldTimeout)
	defer cancel()
	body, err := EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		var res *Result
		if s.IsLeader() {
			res, err = s.applyLocal(ctx, cmd, body)
		} else {
			res, err = s.batcher.forward(ctx, body)
			s.countForward("write", err)
		}
		if err == nil || !errors.Is(err, ErrNotLeader) {
			return res, err
		}
		if werr := s.waitLeader(parent, ctx, attempt); werr != nil {
			return nil, werr
		}
	}
}

func (s *Server) countForward(kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.forwarded.WithLabelValues(kind, result).Inc()
}

// waitLeader sleeps a little before another attempt. It gives up with
// ErrNoLeader when the hold timeout (ctx) ends, or with the caller's own
// error when the caller (parent) gave up first.
func (s *Server) waitLeader(parent, ctx context.Context, attempt int) error {
	d := time.Duration(min(attempt+1, 10)) * 5 * time.Millisecond
	select {
	case <-ctx.Done():
		if err := parent.Err(); err != nil {
			return fmt.Errorf("gave up waiting for a leader: %w", err)
		}
		return fmt.Errorf("%w after %s", ErrNoLeader, s.cfg.HoldTimeout)
	case <-s.shutdownCh:
		return errors.New("server shutting down")
	case <-time.After(d):
		return nil
	}
}

// ApplyLocal commits cmd on this server, which must be the leader.
func (s *Server) ApplyLocal(ctx context.Context, cmd *Command) (*Result, error) {
	return s.applyLocal(ctx, cmd, nil)
}

// applyLocal is ApplyLocal with cmd's encoding, when the caller has it.
func (s *Server) applyLocal(ctx context.Context, cmd *Command, raw []byte) (*Result, error) {
	p, res, err := s.prepare(cmd, raw)
	if p == nil {
		return res, err
	}
	if err := s.propose(ctx, p); err != nil {
		return nil, err
	}
	return s.finish(ctx, p)
}

// prepare checks a command on the leader and encodes it for the log,
// reusing raw (its encoding as forwarded, if any) when it is unchanged. A
// command answered without the log (session renew, a lock in its lock
// delay) returns a nil proposal and the answer.
func (s *Server) prepare(cmd *Command, raw []byte) (*proposal, *Result, error) {
	if !s.IsLeader() {
		return nil, nil, ErrNotLeader
	}
	switch cmd.Op {
	case OpSessionRenew:
		res, err := s.renewSession(cmd.ID)
		return nil, res, err
	case OpVIPRenew, OpVIPSetHolder:
		if res, err := s.prepareVIP(cmd); res != nil || err != nil || cmd.Op == OpVIPRenew {
			return nil, res, err
		}
	case OpKVLock:
		if until := s.store.LockDelayUntil(cmd.KV.Key); !until.IsZero() {
			return nil, &Result{OK: false, Index: s.fsm.applied.Load()}, nil
		}
	case OpSessionCreate:
		if cmd.Session.ID == "" {
			cmd.Session.ID = newUUID()
			raw = nil
		}
	}
	if raw == nil {
		var err error
		if raw, err = EncodeCommand(cmd); err != nil {
			return nil, nil, err
		}
	}
	return newProposal(cmd, raw), nil, nil
}

// finish waits for a proposal and keeps the leader's session timers in
// step with what it did.
func (s *Server) finish(ctx context.Context, p *proposal) (*Result, error) {
	res, err := s.await(ctx, p)
	if err != nil {
		return nil, err
	}
	if res.Error == "" {
		switch p.cmd.Op {
		case OpSessionCreate:
			s.sessions.reset(res.Session)
		case OpSessionDestroy:
			s.sessions.stop(p.cmd.ID)
		}
	}
	return res, nil
}

// ReadIndexLocal confirms leadership with a quorum and returns the index a
// linearizable read must wait for: the last command committed when the
// call began (Raft's read index). Not the leader's applied index: the
// leader sends a new commit index to the followers as it hands the entry
// to its own FSM, so a follower can apply an entry, and serve it, before
// the leader has; a read on the leader that went by the leader's applied
// index could then answer older state than a read that finished before it
// (the e2e suite caught exactly that).
func (s *Server) ReadIndexLocal() (uint64, error) {
	term := s.raft.CurrentTerm()
	if !s.IsLeader() || s.readyTerm.Load() != term {
		return 0, ErrNotLeader
	}
	commit := s.raft.CommitIndex()
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return 0, ErrNotLeader
	}
	// Leadership confirmed by a quorum, still in the term whose barrier
	// was applied here.
	if s.raft.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	return s.lastCommandAtOrBefore(commit)
}

// lastCommandAtOrBefore returns the index of the last command entry at or
// before idx (the FSM sees only commands, so a wait for a no-op or a
// configuration entry would never end), or what the FSM has applied when
// that is later.
func (s *Server) lastCommandAtOrBefore(idx uint64) (uint64, error) {
	applied := s.fsm.applied.Load()
	for i := idx; i > applied; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			return 0, fmt.Errorf("read index: log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return applied, nil
}

// ConsistentRead returns once this server's state store reflects every
// write acknowledged before the call, so that a read from it is
// linearizable. On a follower it asks the leader for its read index.
func (s *Server) ConsistentRead(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, s.cfg.HoldTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var idx uint64
		var err error
		if s.IsLeader() {
			idx, err = s.ReadIndexLocal()
		} else {
			var out struct{ Index uint64 }
			// A read index asked of a leader that has been replaced is
			// asked again of the new one (a read changes nothing).
			fctx, fcancel := context.WithCancel(ctx)
			stop := context.AfterFunc(s.epoch(), fcancel)
			err = s.forward(fctx, http.MethodGet, PathReadIndex, nil, &out)
			stop()
			if err != nil && fctx.Err() != nil && ctx.Err() == nil {
				err = ErrNotLeader
			}
			fcancel()
			s.countForward("read_index", err)
			idx = out.Index
		}
		if err == nil {
			return s.waitApplied(ctx, idx)
		}
		if !errors.Is(err, ErrNotLeader) {
			return err
		}
		if werr := s.waitLeader(parent, ctx, attempt); werr != nil {
			return werr
		}
	}
}

func (s *Server) waitApplied(ctx context.Context, idx uint64) error {
	for {
		ch, done := s.fsm.waitApplied(idx)
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d to be applied: %w", idx, ctx.Err())
		}
	}
}

// forward sends a request to the leader's internal endpoint and decodes
// its JSON answer into out. It returns ErrNotLeader (retryable: nothing was
// applied) when there is no leader, the leader cannot be dialled, or the
// receiver says it does not lead, and an error wrapping ErrUnknownOutcome
// when the request may have reached the leader but no answer came back.
func (s *Server) forward(ctx context.Context, method, path string, body []byte, out any) error {
	name, _ := s.Leader()
	if name == "" || name == s.cfg.NodeName {
		return ErrNotLeader
	}
	m, ok := s.cfg.Gossip.Member(name)
	if !ok || m.APIAddr == "" {
		return ErrNotLeader
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.scheme+"://"+m.APIAddr+path, rd)
	if err != nil {
		return fmt.Errorf("forwarding to leader: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return ErrNotLeader // never reached the leader: safe to retry
		}
		if ctx.Err() != nil {
			return fmt.Errorf("forwarding to leader %s: %w", name, ctx.Err())
		}
		return fmt.Errorf("forwarding to leader %s: %w (%v)", name, ErrUnknownOutcome, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading leader %s answer: %w (%v)", name, ErrUnknownOutcome, err)
	}
	switch {
	case resp.StatusCode == StatusNotLeader:
		return ErrNotLeader
	case resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(data, []byte("may or may not")):
		return ErrUnknownOutcome
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("leader %s answered %d: %s", name, resp.StatusCode, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding leader %s answer: %w (%v)", name, ErrUnknownOutcome, err)
	}
	return nil
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
