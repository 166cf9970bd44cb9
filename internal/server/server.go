// Package server runs the control plane on server agents: hashicorp/raft
// with a durable write-ahead log and snapshots, the FSM that applies log
// entries to the state store, forwarding of writes and read barriers to the
// leader, gossip-driven bootstrap, and the leader's duties (recording member
// state, adding and removing Raft voters, expiring sessions).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/pki"
	"github.com/herd-cluster/herd/internal/state"
)

// Gossip is what the server needs from membership: the current member
// list and a change notification. The leader is its only consumer.
type Gossip interface {
	Members() []api.Member
	Member(name string) (api.Member, bool)
	Notify() <-chan struct{}
}

// Config configures a Server.
type Config struct {
	// NodeName is the Raft server ID.
	NodeName string
	// DataDir is where the Raft log and snapshots live (a "raft"
	// directory is created inside).
	DataDir string
	// RPCListener is the bound listener for the Raft transport; the
	// server owns it after New.
	RPCListener net.Listener
	// AdvertiseAddr is the address other servers dial for Raft; nil
	// means the listener's address.
	AdvertiseAddr net.Addr
	// BootstrapExpect is how many servers must be seen before the first
	// configuration is written; 0 never bootstraps.
	BootstrapExpect int
	// Raft holds the timers.
	Raft config.Raft
	// DeadServerCleanup is how long a failed server stays a voter.
	DeadServerCleanup time.Duration
	// HoldTimeout bounds how long a request waits for a leader before it
	// fails. Default 7s.
	HoldTimeout time.Duration
	// Gossip is the membership view.
	Gossip Gossip
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Security secures Raft and the calls to other servers' APIs with
	// mutual TLS and runs the cluster CA; nil means plaintext.
	Security *Security
	// LeaderTasks run while this server leads (after its barrier), each
	// in its own goroutine until its context ends with the leadership.
	LeaderTasks []func(ctx context.Context)
}

// Server is a running Raft server.
type Server struct {
	cfg    Config
	logger *slog.Logger

	raft      *raft.Raft
	transport *raft.NetworkTransport
	stream    *listenerLayer
	logStore  *wal.WAL
	// logs is the log as Raft reads it (a cache over logStore), for the
	// read index.
	logs    raft.LogStore
	metaDB  *metadb.BoltMetaDB
	fsm     *fsm
	store   *state.Store
	metrics *metrics
	client  *http.Client
	// scheme is how other servers' APIs are reached: http or https.
	scheme string

	// readyTerm is the Raft term in which this server, as leader, has
	// applied every entry of earlier terms (0 when it does not lead):
	// linearizable reads are served here only in that same term. A term
	// rather than a flag, because Raft's leader channel may coalesce a
	// loss and a regain of leadership into one notice, leaving the old
	// leader loop (and its readiness) running into a term in which
	// another leader may have committed entries not yet applied here.
	readyTerm atomic.Uint64
	// vips are the VIP leases this server keeps while it leads.
	vips vipLeases
	// leaderEpoch ends when the leader changes: forwards to the old
	// leader stop waiting then.
	leaderEpoch atomic.Pointer[leaderEpoch]

	// sessions holds the TTL timers; used only while leader.
	sessions *sessionTimers
	// batcher coalesces forwarded writes while a follower.
	batcher *batcher
	// proposals feed the leader's proposer loop.
	proposals chan *proposal

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// ErrNoLeader means no leader could be found within the hold timeout.
var ErrNoLeader = errors.New("no cluster leader")

// New opens (or creates) the Raft data in cfg.DataDir and starts Raft.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	if cfg.HoldTimeout == 0 {
		cfg.HoldTimeout = 7 * time.Second
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}
	scheme := "http"
	if cfg.Security != nil {
		// Other servers' APIs, as the servers they must be.
		tr.TLSClientConfig = cfg.Security.Certs.ClientConfig(pki.RoleServer, false)
		scheme = "https"
	}
	s := &Server{
		cfg:        cfg,
		logger:     cfg.Logger,
		store:      state.New(),
		shutdownCh: make(chan struct{}),
		proposals:  make(chan *proposal, 4*maxPacked),
		client:     &http.Client{Transport: tr},
		scheme:     scheme,
	}
	s.sessions = newSessionTimers()
	s.newLeaderEpoch()
	s.fsm = newFSM(s.store, nil)
	s.metrics = newMetrics(cfg.Registerer, func() *raft.Raft { return s.raft }, s.fsm)
	s.fsm.metrics = s.metrics

	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(filepath.Join(raftDir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("creating raft directory: %w", err)
	}
	hl := logging.HCLog(cfg.Logger, "raft")
	// raft-wal's Close leaves its metadata DB (and its file lock) open, so
	// we own that DB and close it ourselves; otherwise a restart in the
	// same process would wait forever for the lock.
	s.metaDB = &metadb.BoltMetaDB{}
	logStore, err := wal.Open(filepath.Join(raftDir, "wal"), wal.WithLogger(logging.HCLog(cfg.Logger, "wal")), wal.WithMetaStore(s.metaDB))
	if err != nil {
		s.metaDB.Close()
		return nil, fmt.Errorf("opening raft log in %s (data kept; move it aside only if you mean to discard this server's state): %w", filepath.Join(raftDir, "wal"), err)
	}
	s.logStore = logStore
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 3, hl)
	if err != nil {
		logStore.Close()
		return nil, fmt.Errorf("opening snapshot store: %w", err)
	}
	stream := &listenerLayer{Listener: cfg.RPCListener, advertise: cfg.AdvertiseAddr}
	if cfg.Security != nil {
		stream.serverTLS = cfg.Security.Certs.NodeServerConfig(pki.RoleServer)
		stream.clientTLS = cfg.Security.Certs.ClientConfig(pki.RoleServer, false)
	}
	s.stream = stream
	s.transport = raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, hl)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.HeartbeatTimeout = cfg.Raft.HeartbeatTimeout.D()
	rc.ElectionTimeout = cfg.Raft.ElectionTimeout.D()
	rc.LeaderLeaseTimeout = cfg.Raft.LeaderLeaseTimeout.D()
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	rc.SnapshotInterval = cfg.Raft.SnapshotInterval.D()
	rc.TrailingLogs = cfg.Raft.TrailingLogs
	// Unbuffered: the proposer waits while the leader writes the log,
	// and packs what arrives meanwhile into its next entry.
	rc.BatchApplyCh = false
	rc.ShutdownOnRemove = false
	rc.Logger = hl
	if err := raft.ValidateConfig(rc); err != nil {
		s.closeStores()
		return nil, fmt.Errorf("raft config: %w", err)
	}
	// The cache serves recent entries to replication and to the FSM from
	// memory; without it every apply on a follower re-reads the log file.
	cached, err := raft.NewLogCache(1024, logStore)
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	s.logs = cached
	r, err := raft.NewRaft(rc, s.fsm, cached, logStore, snaps, s.transport)
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("starting raft: %w", err)
	}
	s.raft = r

	s.batcher = newBatcher(s)
	s.goFunc(s.batcher.run)
	s.goFunc(s.runProposer)
	s.goFunc(s.monitorLeadership)
	hasState, err := raft.HasExistingState(logStore, logStore, snaps)
	if err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("reading raft state: %w", err)
	}
	if !hasState && cfg.BootstrapExpect > 0 {
		s.goFunc(s.bootstrapLoop)
	}
	return s, nil
}

func (s *Server) closeStores() {
	s.transport.Close()
	s.stream.waitHandlers(5 * time.Second)
	s.logStore.Close()
	s.metaDB.Close()
}

// goFunc runs f in a goroutine that Shutdown waits for.
func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Store returns the local state store (possibly stale on a follower).
func (s *Server) Store() *state.Store { return s.store }

// RPCAddr is the Raft address other servers use to reach this one.
func (s *Server) RPCAddr() string { return string(s.transport.LocalAddr()) }

// IsLeader reports whether this server leads.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's node name and Raft address ("" if unknown).
func (s *Server) Leader() (name, addr string) {
	a, id := s.raft.LeaderWithID()
	return string(id), string(a)
}

// LastContact is how long ago this server last heard from the leader (zero
// on the leader itself).
func (s *Server) LastContact() time.Duration {
	if s.IsLeader() {
		return 0
	}
	lc := s.raft.LastContact()
	if lc.IsZero() {
		return 0
	}
	return time.Since(lc)
}

// Stats returns Raft's own status fields (term, indexes, state).
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// Configuration returns the current Raft configuration.
func (s *Server) Configuration() (api.RaftConfiguration, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return api.RaftConfiguration{}, fmt.Errorf("reading raft configuration: %w", err)
	}
	_, leaderID := s.raft.LeaderWithID()
	out := api.RaftConfiguration{Index: f.Index(), Servers: []api.RaftServer{}}
	for _, srv := range f.Configuration().Servers {
		out.Servers = append(out.Servers, api.RaftServer{
			ID:       string(srv.ID),
			Node:     string(srv.ID),
			Address:  string(srv.Address),
			Leader:   srv.ID == leaderID,
			Voter:    srv.Suffrage == raft.Voter,
			Suffrage: srv.Suffrage.String(),
		})
	}
	return out, nil
}

// Snapshot asks Raft to take a snapshot now.
func (s *Server) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Leave prepares a graceful exit: a leader hands leadership to another
// voter first. Call it before leaving gossip; the new leader then removes
// this server from the configuration when gossip says it left.
func (s *Server) Leave(ctx context.Context) error {
	cfg, err := s.Configuration()
	if err != nil || len(cfg.Servers) <= 1 {
		return err
	}
	if s.IsLeader() {
		if err := s.raft.LeadershipTransfer().Error(); err != nil {
			s.logger.Warn("leadership transfer before leave failed", "err", err)
		}
	}
	return nil
}

// WaitRemoved waits until this server is no longer in the Raft
// configuration, or ctx ends.
func (s *Server) WaitRemoved(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		cfg, err := s.Configuration()
		if err != nil {
			return
		}
		found := false
		for _, srv := range cfg.Servers {
			found = found || srv.ID == s.cfg.NodeName
		}
		if !found || len(cfg.Servers) <= 1 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown stops Raft and every server goroutine and closes the log. It
// is not graceful: call Leave first for that. Safe to call more than once.
func (s *Server) Shutdown() error {
	var err error
	s.shutdownOnce.Do(func() {
		// Stop our goroutines while Raft still runs: a leader loop may be
		// waiting on a Raft future, which a stopped Raft never answers.
		close(s.shutdownCh)
		if e := s.leaderEpoch.Load(); e != nil {
			e.cancel()
		}
		s.wg.Wait()
		if s.raft != nil {
			err = s.raft.Shutdown().Error()
		}
		s.sessions.stopAll()
		s.transport.CloseStreams()
		s.transport.Close()
		// A heartbeat handled while Raft shuts down may still write the
		// term; closing the stores under it panics raft.
		if !s.stream.waitHandlers(5 * time.Second) {
			s.logger.Warn("raft connection handlers still running after 5s; closing the stores anyway")
		}
		if cerr := s.logStore.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if cerr := s.metaDB.Close(); cerr != nil && err == nil {
			err = cerr
		}
		s.client.CloseIdleConnections()
	})
	return err
}

// listenerLayer adapts a bound listener to raft.StreamLayer. It tracks
// the connections it accepted and closes them with the listener: raft's
// transport leaves them open, and their reader goroutines with them.
type listenerLayer struct {
	net.Listener
	advertise net.Addr
	// serverTLS and clientTLS, when set, make every Raft connection
	// mutual TLS 1.3 between servers of the cluster.
	serverTLS, clientTLS *tls.Config

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// handlers counts accepted connections not yet closed by raft's
	// handler, which closes each when it returns. A handler may be in the
	// middle of a heartbeat that writes the term to the stable store, so
	// the stores close only once they are all done.
	handlers sync.WaitGroup
}

// waitHandlers waits up to timeout for raft's connection handlers to end
// (after Close) and reports whether they did.
func (l *listenerLayer) waitHandlers(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		l.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (l *listenerLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	if l.conns == nil {
		l.conns = map[net.Conn]struct{}{}
	}
	l.conns[c] = struct{}{}
	l.handlers.Add(1)
	tc := &trackedConn{Conn: c, raw: c, l: l}
	if l.serverTLS != nil {
		tc.Conn = tls.Server(c, l.serverTLS)
	}
	return tc, nil
}

func (l *listenerLayer) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.conns = nil
	return err
}

// trackedConn forgets itself when closed.
type trackedConn struct {
	net.Conn
	raw  net.Conn // the accepted TCP connection, the key in l.conns
	l    *listenerLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.raw)
		c.l.mu.Unlock()
		c.l.handlers.Done()
	})
	return c.Conn.Close()
}

func (l *listenerLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.clientTLS == nil {
		return net.DialTimeout("tcp", string(addr), timeout)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: l.clientTLS}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", string(addr))
	if err != nil {
		return nil, fmt.Errorf("dialing raft peer %s: %w", addr, err)
	}
	return c, nil
}

func (l *listenerLayer) Addr() net.Addr {
	if l.advertise != nil {
		return l.advertise
	}
	return l.Listener.Addr()
}
