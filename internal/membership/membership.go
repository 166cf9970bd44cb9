// Package membership wraps hashicorp/memberlist: it joins the gossip pool,
// carries each node's metadata (role, zone, labels, addresses, version),
// detects failures, and tells one consumer when anything changed.
package membership

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/logging"
)

// Meta is the metadata every node gossips about itself.
type Meta struct {
	Role    string            `json:"r"`
	Zone    string            `json:"z,omitempty"`
	Labels  map[string]string `json:"l,omitempty"`
	APIAddr string            `json:"a"`
	RPCAddr string            `json:"p,omitempty"`
	Version string            `json:"v"`
	// Leaving is set just before a graceful leave, so that the others
	// record "left" rather than "failed" (memberlist's own verdict does
	// not reach its event callbacks reliably).
	Leaving bool `json:"x,omitempty"`
	// VIPs is set when the agent may hold floating addresses.
	VIPs bool `json:"h,omitempty"`
}

// Config configures a Membership.
type Config struct {
	// NodeName is this node's unique name.
	NodeName string
	// BindAddr and BindPort are where gossip listens (TCP and UDP); port 0
	// picks a free one.
	BindAddr string
	BindPort int
	// AdvertiseAddr is the address others reach us at; empty means the
	// bind address.
	AdvertiseAddr string
	// Meta is gossiped to every other node; at most 512 bytes encoded.
	Meta Meta
	// Logger receives memberlist's log lines; nil discards them.
	Logger *slog.Logger
	// ProbeInterval overrides the failure-detection probe interval;
	// zero means 200ms (see Tune).
	ProbeInterval time.Duration
	// Keys encrypt gossip (AES-GCM; 16, 24 or 32 bytes each), the primary
	// first: messages go out under it and come in under any of them.
	// Empty: gossip is plaintext.
	Keys [][]byte
}

// Membership is a running gossip member.
type Membership struct {
	name   string
	list   *memberlist.Memberlist
	logger *slog.Logger

	// metaMu guards meta, which changes once, when leaving.
	metaMu   sync.Mutex
	metaData Meta
	meta     []byte

	// notifyCh coalesces change notifications for the one consumer.
	notifyCh chan struct{}

	// decryptFailures counts messages dropped because no installed key
	// could decrypt (or authenticate) them.
	decryptFailures atomic.Uint64
	// ring is the gossip keyring, nil when gossip is plaintext.
	ring *memberlist.Keyring

	// mu guards members (every node ever seen, with its last state) and
	// conflict.
	mu      sync.Mutex
	members map[string]*member
	// conflict is set when another live node uses this node's name.
	conflict string
}

// member is a gossip member and whether it announced that it is leaving.
type member struct {
	api.Member
	leaving bool
}

// Tune applies herd's LAN timing to a memberlist config: a killed member is
// declared dead in about a second, while Lifeguard's suspicion (refutable
// for 4 probe intervals, longer while a node is unsure of its own health)
// keeps a slow or briefly paused member alive.
func Tune(c *memberlist.Config, probe time.Duration) {
	if probe <= 0 {
		probe = 200 * time.Millisecond
	}
	c.ProbeInterval = probe
	c.ProbeTimeout = probe / 2
	c.GossipInterval = probe / 2
	c.SuspicionMult = 4
	c.SuspicionMaxTimeoutMult = 6
	c.PushPullInterval = 15 * time.Second
	c.GossipToTheDeadTime = 15 * time.Second
	c.TCPTimeout = 2 * time.Second
}

// New starts gossip. It does not join anyone; call Join or RetryJoin.
func New(cfg Config) (*Membership, error) {
	meta, err := json.Marshal(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("encoding node metadata: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node metadata is %d bytes, more than gossip's limit of %d: use fewer or shorter labels", len(meta), memberlist.MetaMaxSize)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = logging.Discard()
	}
	m := &Membership{
		name:     cfg.NodeName,
		logger:   logger,
		meta:     meta,
		metaData: cfg.Meta,
		notifyCh: make(chan struct{}, 1),
		members:  map[string]*member{},
	}
	mc := memberlist.DefaultLANConfig()
	Tune(mc, cfg.ProbeInterval)
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertisePort = cfg.BindPort
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr = cfg.AdvertiseAddr
	}
	mc.Delegate = &delegate{m: m}
	mc.Events = &events{m: m}
	mc.Conflict = &conflicts{m: m}
	mc.Logger = log.New(&countingWriter{m: m, next: logging.StdLog(logger, "memberlist").Writer()}, "", 0)
	if len(cfg.Keys) > 0 {
		ring, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		mc.Keyring = ring
		m.ring = ring
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("starting gossip on %s: %w", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	m.list = list
	return m, nil
}

// countingWriter counts memberlist's reports of messages it could not
// decrypt before passing its log lines on.
type countingWriter struct {
	m    *Membership
	next io.Writer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("crypt")) {
		w.m.decryptFailures.Add(1)
	}
	return w.next.Write(p)
}

// DecryptFailures is how many gossip messages were dropped because no
// installed key decrypts them (a wrong key, or not encrypted at all).
func (m *Membership) DecryptFailures() uint64 { return m.decryptFailures.Load() }

// SetKeys installs keys (primary first): messages go out under the new
// primary at once; keys not listed are removed.
func (m *Membership) SetKeys(keys [][]byte) error {
	ring := m.ring
	if ring == nil {
		return errors.New("gossip is not encrypted on this node")
	}
	if len(keys) == 0 {
		return errors.New("no gossip keys")
	}
	for _, k := range keys {
		if err := ring.AddKey(k); err != nil {
			return fmt.Errorf("adding gossip key: %w", err)
		}
	}
	if err := ring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("using the new primary gossip key: %w", err)
	}
	for _, old := range ring.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, old) }) {
			if err := ring.RemoveKey(old); err != nil {
				return fmt.Errorf("removing an old gossip key: %w", err)
			}
		}
	}
	return nil
}

// Addr returns the gossip address this node advertises.
func (m *Membership) Addr() string {
	n := m.list.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// ErrNameConflict means another live node already uses this node's name.
var ErrNameConflict = errors.New("node name already in use")

// Conflict returns a description of a name conflict seen so far, or "".
func (m *Membership) Conflict() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conflict
}

// Join contacts the given gossip addresses and returns how many answered.
// It fails with ErrNameConflict when another live node has this node's
// name; the caller should then shut down (not leave, which would tell the
// cluster that the other node left).
func (m *Membership) Join(addrs []string) (int, error) {
	n, err := m.list.Join(addrs)
	if c := m.Conflict(); c != "" {
		return 0, fmt.Errorf("%w: %s", ErrNameConflict, c)
	}
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = errors.New("no address answered")
	}
	return 0, fmt.Errorf("joining %v: %w", addrs, err)
}

// RetryJoin joins addrs, retrying with exponential back-off from first up
// to ceiling until one answers or ctx ends. It logs every failed attempt.
func (m *Membership) RetryJoin(ctx context.Context, addrs []string, first, ceiling time.Duration) error {
	wait := first
	for attempt := 1; ; attempt++ {
		n, err := m.Join(addrs)
		if errors.Is(err, ErrNameConflict) {
			m.logger.Error("not joining: this node's name is taken", "err", err)
			return err
		}
		if err == nil {
			m.logger.Info("joined cluster", "addresses", addrs, "answered", n, "attempt", attempt)
			return nil
		}
		m.logger.Warn("join failed, retrying", "addresses", addrs, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, ceiling)
	}
}

// ReconnectTimeout is how long Reconnect keeps trying a failed member
// before it gives up on it (a node gone for good is removed by the
// operator or, for servers, by dead-server cleanup).
const ReconnectTimeout = 72 * time.Hour

// Reconnect tries, every interval (with jitter) until ctx ends, to join
// one member that failed less than ReconnectTimeout ago, picked at random.
// Gossip alone does not heal a partition that outlasts the time members
// keep gossiping to the dead: each side has declared the other dead and
// stopped talking to it. A join is a full state exchange, so one that
// gets through merges the two sides again and each refutes its death.
func (m *Membership) Reconnect(ctx context.Context, interval time.Duration) {
	for {
		wait := interval/2 + rand.N(interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		m.metaMu.Lock()
		leaving := m.metaData.Leaving
		m.metaMu.Unlock()
		if leaving {
			return // a node that leaves does not come back by itself
		}
		var failed []string
		m.mu.Lock()
		for name, mem := range m.members {
			if name != m.name && mem.Status == api.MemberFailed && time.Since(mem.StatusSince) < ReconnectTimeout {
				failed = append(failed, mem.Addr)
			}
		}
		m.mu.Unlock()
		if len(failed) == 0 {
			continue
		}
		addr := failed[rand.N(len(failed))]
		if _, err := m.list.Join([]string{addr}); err != nil {
			m.logger.Debug("reconnecting to a failed member", "addr", addr, "err", err)
		} else {
			m.logger.Info("reconnected to a failed member", "addr", addr)
		}
	}
}

// Notify returns the channel that receives a value after the member list
// changes. Notifications coalesce; there is one consumer.
func (m *Membership) Notify() <-chan struct{} { return m.notifyCh }

// Members returns every node seen so far, including failed and left ones,
// sorted by name.
func (m *Membership) Members() []api.Member {
	m.mu.Lock()
	out := make([]api.Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem.Member)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Member returns one node by name.
func (m *Membership) Member(name string) (api.Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ok := m.members[name]
	if !ok {
		return api.Member{}, false
	}
	return mem.Member, true
}

// Leave tells the others that this node is leaving on purpose, waiting up
// to timeout for the message to spread.
func (m *Membership) Leave(timeout time.Duration) error {
	m.metaMu.Lock()
	m.metaData.Leaving = true
	m.meta, _ = json.Marshal(m.metaData)
	m.metaMu.Unlock()
	if err := m.list.UpdateNode(timeout / 2); err != nil {
		m.logger.Warn("announcing leave", "err", err)
	}
	if err := m.list.Leave(timeout); err != nil {
		return fmt.Errorf("gossip leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip at once, without telling anyone: to the others it
// looks like a crash unless Leave ran first.
func (m *Membership) Shutdown() error {
	if err := m.list.Shutdown(); err != nil {
		return fmt.Errorf("gossip shutdown: %w", err)
	}
	return nil
}

func (m *Membership) update(n *memberlist.Node, status string) {
	mem := &api.Member{
		Name:   n.Name,
		Addr:   net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		Status: status,
	}
	var meta Meta
	if err := json.Unmarshal(n.Meta, &meta); err != nil {
		m.logger.Warn("ignoring unreadable node metadata", "member", n.Name, "err", err)
	}
	mem.Role, mem.Zone, mem.Labels = meta.Role, meta.Zone, meta.Labels
	mem.APIAddr, mem.RPCAddr, mem.Version, mem.VIPs = meta.APIAddr, meta.RPCAddr, meta.Version, meta.VIPs
	m.mu.Lock()
	old := m.members[n.Name]
	if status == api.MemberFailed && old != nil && old.leaving {
		mem.Status, status = api.MemberLeft, api.MemberLeft
	}
	if n.Name == m.name && status != api.MemberAlive {
		mem.Status, status = api.MemberLeft, api.MemberLeft
	}
	if old == nil || old.Status != status {
		mem.StatusSince = time.Now()
	} else {
		mem.StatusSince = old.StatusSince
	}
	m.members[n.Name] = &member{Member: *mem, leaving: meta.Leaving}
	m.mu.Unlock()
	if old == nil || old.Status != status {
		m.logger.Info("member "+status, "member", n.Name, "addr", mem.Addr, "role", mem.Role)
	}
	select {
	case m.notifyCh <- struct{}{}:
	default:
	}
}

// delegate hands our metadata to memberlist.
type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	d.m.metaMu.Lock()
	defer d.m.metaMu.Unlock()
	return d.m.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// conflicts records name conflicts memberlist detects.
type conflicts struct{ m *Membership }

func (c *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	msg := fmt.Sprintf("node %q is at %s:%d and also at %s:%d", existing.Name, existing.Addr, existing.Port, other.Addr, other.Port)
	c.m.logger.Error("node name conflict: two live agents use the same name; give each a unique --node", "conflict", msg)
	if existing.Name == c.m.name {
		c.m.mu.Lock()
		c.m.conflict = msg
		c.m.mu.Unlock()
	}
}

// events records memberlist's verdicts. memberlist calls these
// synchronously and they must not block.
type events struct{ m *Membership }

func (e *events) NotifyJoin(n *memberlist.Node)   { e.m.update(n, api.MemberAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.m.update(n, api.MemberAlive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		e.m.update(n, api.MemberLeft)
		return
	}
	e.m.update(n, api.MemberFailed)
}
