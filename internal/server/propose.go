package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// The leader commits commands through one proposer loop that packs the
// commands waiting at that moment into a single Raft log entry (group
// commit). Raft already shares one fsync between the entries it receives
// together; packing them into one entry also shares the per-entry costs
// on every server: one log record, one replication item, one FSM call,
// one future. The batch forms while the previous entry is being written,
// so a lone writer still gets its own entry at once.
//
// Every command in a packed entry is applied at that entry's index. To
// keep each key's ModifyIndex (and so a lock's fencing token) rising with
// every change, a packed entry never holds two commands for the same key,
// and commands that touch more than one key (sessions, trees, members)
// always travel alone.

// batchMagic starts a packed log entry; a single command is JSON and
// starts with '{'. Part of the log format: never change.
const batchMagic byte = 0xB1

// Proposer limits.
const (
	maxPacked      = 256     // commands per packed entry
	maxPackedBytes = 1 << 20 // bytes per packed entry (one command may exceed it alone)
)

// proposal is one command waiting to be committed on the leader.
type proposal struct {
	cmd  *Command
	data []byte
	// key is the one key the command touches; "" means it may not share
	// an entry.
	key string

	res  *Result
	err  error
	done chan struct{}
}

// packedEntry is one submitted log entry and the proposals it carries.
type packedEntry struct {
	future raft.ApplyFuture
	props  []*proposal
	start  time.Time
}

func newProposal(cmd *Command, data []byte) *proposal {
	p := &proposal{cmd: cmd, data: data, done: make(chan struct{})}
	if sharesEntry(cmd) {
		p.key = cmd.Key
		if cmd.KV != nil {
			p.key = cmd.KV.Key
		}
	}
	return p
}

// propose queues p for the proposer loop.
func (s *Server) propose(ctx context.Context, p *proposal) error {
	select {
	case s.proposals <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queueing the write: %w", ctx.Err())
	case <-s.shutdownCh:
		return errors.New("server shutting down")
	}
}

// await waits for a queued proposal's outcome.
func (s *Server) await(ctx context.Context, p *proposal) (*Result, error) {
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the commit: %w (%w)", ErrUnknownOutcome, ctx.Err())
	case <-s.shutdownCh:
		return nil, fmt.Errorf("server shutting down: %w", ErrUnknownOutcome)
	}
}

// runProposer packs queued proposals into log entries until shutdown. It
// and the responder it feeds are owned by the server's WaitGroup, which
// Shutdown waits for while Raft still runs: a running Raft answers every
// future (committed entries once applied, others when leadership is
// lost), while a stopped one leaves committed but unapplied entries
// unanswered forever.
func (s *Server) runProposer() {
	entries := make(chan packedEntry, 1024)
	s.goFunc(func() { s.respond(entries) })
	defer close(entries)

	var carry *proposal // taken from the queue but not fitting the last entry
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.proposals:
			case <-s.shutdownCh:
				s.drainProposals()
				return
			}
		}
		props := []*proposal{first}
		if first.key != "" {
			props, carry = s.fill(props)
		}
		var data []byte
		if len(props) == 1 {
			data = first.data
		} else {
			items := make([][]byte, len(props))
			for i, p := range props {
				items[i] = p.data
			}
			data = packEntry(items)
		}
		start := time.Now()
		f := s.raft.Apply(data, s.cfg.HoldTimeout)
		s.metrics.packedSize.Observe(float64(len(props)))
		entries <- packedEntry{future: f, props: props, start: start}
	}
}

// fill adds queued proposals to props while they can share its entry. It
// returns the first proposal it took that could not.
func (s *Server) fill(props []*proposal) ([]*proposal, *proposal) {
	keys := map[string]struct{}{props[0].key: {}}
	size := len(props[0].data)
	for len(props) < maxPacked && size < maxPackedBytes {
		var p *proposal
		select {
		case p = <-s.proposals:
		default:
			return props, nil
		}
		if _, dup := keys[p.key]; dup || p.key == "" || size+len(p.data) > maxPackedBytes {
			return props, p
		}
		keys[p.key] = struct{}{}
		size += len(p.data)
		props = append(props, p)
	}
	return props, nil
}

func (s *Server) drainProposals() {
	for {
		select {
		case p := <-s.proposals:
			p.err = errors.New("server shutting down")
			close(p.done)
		default:
			return
		}
	}
}

// respond hands each committed entry's results to its proposals, in
// commit order, until entries is closed and drained.
func (s *Server) respond(entries <-chan packedEntry) {
	for e := range entries {
		err := e.future.Error()
		if err == nil {
			s.metrics.applyLatency.Observe(time.Since(e.start).Seconds())
		}
		var results []*Result
		if err == nil {
			switch r := e.future.Response().(type) {
			case *Result:
				results = []*Result{r}
			case []*Result:
				results = r
			}
			if len(results) != len(e.props) {
				err = fmt.Errorf("entry answered %d results for %d commands", len(results), len(e.props))
			}
		}
		for i, p := range e.props {
			if err != nil {
				p.err = applyError(err)
			} else {
				p.res = results[i]
			}
			close(p.done)
		}
	}
}

// applyError maps a Raft apply error to ours.
func applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrUnknownOutcome
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raft apply timed out before the write was queued: %w", err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("server shutting down: %w", ErrUnknownOutcome)
	}
	return fmt.Errorf("raft apply: %w", err)
}

// packEntry encodes several encoded commands as one log entry (or one
// forwarded batch): batchMagic, the count, then each command's length and
// bytes, numbers as uvarints.
func packEntry(items [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, it := range items {
		n += binary.MaxVarintLen64 + len(it)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, batchMagic)
	buf = binary.AppendUvarint(buf, uint64(len(items)))
	for _, it := range items {
		buf = binary.AppendUvarint(buf, uint64(len(it)))
		buf = append(buf, it...)
	}
	return buf
}

// PackCommands frames encoded commands as one forwarded batch.
func PackCommands(items [][]byte) []byte { return packEntry(items) }

// UnpackCommands splits a forwarded batch into its commands' encodings.
func UnpackCommands(data []byte) ([][]byte, error) { return unpackEntry(data) }

// unpackEntry splits a packed entry into its commands' encodings.
func unpackEntry(data []byte) ([][]byte, error) {
	if len(data) == 0 || data[0] != batchMagic {
		return nil, errors.New("not a packed entry")
	}
	data = data[1:]
	count, n := binary.Uvarint(data)
	if n <= 0 || count > uint64(len(data)) {
		return nil, errors.New("packed entry: bad count")
	}
	data = data[n:]
	out := make([][]byte, 0, count)
	for i := uint64(0); i < count; i++ {
		l, n := binary.Uvarint(data)
		if n <= 0 || l > uint64(len(data)-n) {
			return nil, fmt.Errorf("packed entry: command %d: bad length", i)
		}
		out = append(out, data[n:n+int(l)])
		data = data[n+int(l):]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("packed entry: %d trailing bytes", len(data))
	}
	return out, nil
}
