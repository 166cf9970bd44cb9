package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// PathApplyBatch is the internal endpoint that applies several forwarded
// commands in one request. Followers coalesce concurrent writes into one
// request, so a busy follower pays one HTTP round trip per batch instead
// of one per write; the leader proposes them concurrently and Raft
// batches them into one log append.
const PathApplyBatch = "/v1/internal/apply-batch"

// Batch limits.
const (
	maxBatch         = 128     // commands per forwarded request
	maxBatchBytes    = 1 << 20 // encoded commands per request (one may exceed it alone)
	maxBatchInFlight = 4       // concurrent forwarded requests per follower
)

// BatchItem is one command's outcome in a batch answer.
type BatchItem struct {
	Result *Result `json:"result,omitempty"`
	// Error is set when the command was not applied, or may not have
	// been; Code says which: "not_leader" (not applied, retry), "unknown"
	// (may have been applied), or "error".
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// ApplyBatchLocal applies forwarded commands on the leader and returns
// one item per command, in order. raw holds the commands' encodings as
// forwarded (reused for the log). The commands are queued together, so
// they usually share one log entry.
func (s *Server) ApplyBatchLocal(ctx context.Context, cmds []*Command, raw [][]byte) []BatchItem {
	out := make([]BatchItem, len(cmds))
	props := make([]*proposal, len(cmds))
	for i, c := range cmds {
		p, res, err := s.prepare(c, raw[i])
		if p != nil {
			err = s.propose(ctx, p)
		}
		if p == nil || err != nil {
			out[i] = batchItem(res, err)
			continue
		}
		props[i] = p
	}
	for i, p := range props {
		if p != nil {
			out[i] = batchItem(s.finish(ctx, p))
		}
	}
	return out
}

func batchItem(res *Result, err error) BatchItem {
	switch {
	case err == nil:
		return BatchItem{Result: res}
	case errors.Is(err, ErrNotLeader):
		return BatchItem{Error: err.Error(), Code: "not_leader"}
	case errors.Is(err, ErrUnknownOutcome):
		return BatchItem{Error: err.Error(), Code: "unknown"}
	}
	return BatchItem{Error: err.Error(), Code: "error"}
}

// fwdReq is one write waiting to be forwarded.
type fwdReq struct {
	body json.RawMessage
	done chan fwdResp // buffered 1
}

type fwdResp struct {
	res *Result
	err error
}

// batcher coalesces a follower's concurrent forwarded writes.
type batcher struct {
	s     *Server
	queue chan *fwdReq
	slots chan struct{}
}

func newBatcher(s *Server) *batcher {
	return &batcher{s: s, queue: make(chan *fwdReq, 4*maxBatch), slots: make(chan struct{}, maxBatchInFlight)}
}

// forward queues a command for the leader and waits for its outcome.
func (b *batcher) forward(ctx context.Context, body []byte) (*Result, error) {
	r := &fwdReq{body: body, done: make(chan fwdResp, 1)}
	select {
	case b.queue <- r:
	case <-ctx.Done():
		return nil, ErrNotLeader // never sent; the caller's loop reports ctx
	case <-b.s.shutdownCh:
		return nil, errors.New("server shutting down")
	}
	select {
	case resp := <-r.done:
		return resp.res, resp.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the leader's answer: %w (%w)", ErrUnknownOutcome, ctx.Err())
	}
}

// run takes queued writes and sends them in batches until shutdown. It
// is owned by the server's WaitGroup, as are the sends it starts.
func (b *batcher) run() {
	for {
		var first *fwdReq
		select {
		case first = <-b.queue:
		case <-b.s.shutdownCh:
			b.drain()
			return
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.s.shutdownCh:
			first.done <- fwdResp{err: errors.New("server shutting down")}
			b.drain()
			return
		}
		// Take whatever else is waiting, up to the batch limit.
		batch := []*fwdReq{first}
		size := len(first.body)
	fill:
		for len(batch) < maxBatch && size < maxBatchBytes {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
				size += len(r.body)
			default:
				break fill
			}
		}
		b.s.wg.Add(1)
		go func() {
			defer b.s.wg.Done()
			defer func() { <-b.slots }()
			b.send(batch)
		}()
	}
}

func (b *batcher) drain() {
	for {
		select {
		case r := <-b.queue:
			r.done <- fwdResp{err: errors.New("server shutting down")}
		default:
			return
		}
	}
}

// send forwards one batch and hands each caller its outcome.
func (b *batcher) send(batch []*fwdReq) {
	fail := func(err error) {
		for _, r := range batch {
			r.done <- fwdResp{err: err}
		}
	}
	s := b.s
	bodies := make([][]byte, len(batch))
	for i, r := range batch {
		bodies[i] = r.body
	}
	epoch := s.epoch()
	ctx, cancel := context.WithTimeout(epoch, s.cfg.HoldTimeout)
	defer cancel()
	var items []BatchItem
	if err := s.forward(ctx, http.MethodPost, PathApplyBatch, packEntry(bodies), &items); err != nil {
		if epoch.Err() != nil && !errors.Is(err, ErrNotLeader) {
			// The leader changed while the batch was on its way: it may
			// or may not have been applied.
			err = fmt.Errorf("the leader changed while the write was forwarded to it: %w", ErrUnknownOutcome)
		}
		fail(err)
		return
	}
	name, _ := s.Leader()
	if len(items) != len(batch) {
		fail(fmt.Errorf("leader answered %d items for %d commands: %w", len(items), len(batch), ErrUnknownOutcome))
		return
	}
	for i, it := range items {
		switch it.Code {
		case "":
			batch[i].done <- fwdResp{res: it.Result}
		case "not_leader":
			batch[i].done <- fwdResp{err: ErrNotLeader}
		case "unknown":
			batch[i].done <- fwdResp{err: fmt.Errorf("leader %s: %w", name, ErrUnknownOutcome)}
		default:
			batch[i].done <- fwdResp{err: fmt.Errorf("leader %s: %s", name, it.Error)}
		}
	}
}
