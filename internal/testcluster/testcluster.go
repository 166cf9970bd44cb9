// Package testcluster starts real herd agents inside a test: real sockets
// on 127.0.0.1 with ephemeral ports, real Raft logs in temporary
// directories. It offers fault helpers (Kill, Restart) and wait helpers
// that poll with a deadline instead of sleeping.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/logging"
)

// Options shape a cluster.
type Options struct {
	// Servers and Clients are how many agents of each role to start.
	Servers, Clients int
	// Configure, if set, adjusts each agent's config before it starts.
	Configure func(i int, c *config.Config)
	// Verbose sends agent logs to stderr (also with HERD_TEST_LOG=1).
	Verbose bool
	// Logs, when set, receives every agent's logs (debug level, JSON).
	Logs io.Writer
	// Insecure runs every agent with security off (plaintext, no ACLs).
	// By default the first server creates the cluster CA, the cluster's
	// ACLs are bootstrapped, and the other agents join with tokens.
	Insecure bool
}

// Node is one agent of the cluster, which may be stopped and restarted
// with the same name, data dir and ports.
type Node struct {
	Name   string
	Config config.Config

	mu    sync.Mutex
	agent *agent.Agent
	c     *Cluster
}

// Agent returns the running agent, or nil while it is stopped.
func (n *Node) Agent() *agent.Agent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.agent
}

// Client returns an API client for this node.
func (n *Node) Client(t testing.TB) *api.Client {
	t.Helper()
	a := n.Agent()
	if a == nil {
		t.Fatalf("node %s is stopped", n.Name)
	}
	c, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: n.c.Token, CACert: n.c.CACert, IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ClientWithToken returns an API client for this node that sends token
// (empty: none).
func (n *Node) ClientWithToken(t testing.TB, token string) *api.Client {
	t.Helper()
	a := n.Agent()
	if a == nil {
		t.Fatalf("node %s is stopped", n.Name)
	}
	c, err := api.NewClientConfig(api.Config{Address: a.APIURL(), Token: token, CACert: n.c.CACert, IgnoreEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Cluster is a set of agents in one test process.
type Cluster struct {
	t      testing.TB
	logger *slog.Logger
	Nodes  []*Node
	// Token is the management token of a secure cluster ("" when
	// insecure); CACert the file of its CA.
	Token  string
	CACert string
	// ServerToken and ClientToken are join tokens for more agents.
	ServerToken, ClientToken string
}

// Fast returns herd's defaults with tighter timers suited to tests on
// loopback.
func Fast() config.Config {
	c := config.Default()
	c.Raft.HeartbeatTimeout = config.Duration(300 * time.Millisecond)
	c.Raft.ElectionTimeout = config.Duration(300 * time.Millisecond)
	c.Raft.LeaderLeaseTimeout = config.Duration(150 * time.Millisecond)
	c.RetryInterval = config.Duration(100 * time.Millisecond)
	c.RetryMaxInterval = config.Duration(time.Second)
	return c
}

// Start starts the cluster, servers first, and waits for a leader. All
// agents stop when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, logger: logging.Discard()}
	if opts.Verbose || os.Getenv("HERD_TEST_LOG") != "" {
		c.logger = logging.New(os.Stderr, "debug", "text")
	}
	if opts.Logs != nil {
		c.logger = logging.New(opts.Logs, "debug", "json")
	}
	total := opts.Servers + opts.Clients
	// Every node of every test shares 127.0.0.1: give each its own slice
	// of replica ports, from a random base so that parallel test binaries
	// rarely meet, below the kernel's ephemeral ports (32768 up).
	portBase := 20000 + rand.IntN(120)*100
	for i := range total {
		cfg := Fast()
		cfg.Ephemeral = true
		cfg.Workload.StopOnExit = true
		cfg.Workload.PortMin = portBase + i*100
		cfg.Workload.PortMax = cfg.Workload.PortMin + 99
		cfg.Ports = config.Ports{}
		cfg.BindAddr = "127.0.0.1"
		cfg.DataDir = t.TempDir()
		cfg.Server = i < opts.Servers
		cfg.Security.Disabled = opts.Insecure
		// Certificates live an hour: tests of rotation shorten it.
		cfg.Security.CertTTL = config.Duration(time.Hour)
		cfg.Security.AuditLog = "off"
		if cfg.Server {
			cfg.NodeName = fmt.Sprintf("server%d", i+1)
			if opts.Insecure {
				cfg.BootstrapExpect = opts.Servers
			}
		} else {
			cfg.NodeName = fmt.Sprintf("client%d", i-opts.Servers+1)
		}
		if i > 0 {
			cfg.RetryJoin = []string{c.Nodes[0].Agent().APIAddr()}
			if !opts.Insecure {
				cfg.Security.Token = c.ClientToken
				if cfg.Server {
					cfg.Security.Token = c.ServerToken
				}
			}
		}
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		n := &Node{Name: cfg.NodeName, Config: cfg, c: c}
		c.Nodes = append(c.Nodes, n)
		if err := c.startNode(n, true); err != nil {
			t.Fatalf("starting %s: %v", n.Name, err)
		}
		if i == 0 && !opts.Insecure && cfg.Server && !cfg.Security.Disabled {
			c.secure(n)
		}
	}
	t.Cleanup(c.Stop)
	if opts.Servers > 0 {
		c.WaitLeader(15 * time.Second)
	}
	c.WaitFor(15*time.Second, "every agent to see every other alive", func() bool {
		for _, n := range c.Nodes {
			alive := 0
			for _, m := range n.Agent().Members() {
				if m.Status == api.MemberAlive {
					alive++
				}
			}
			if alive < total {
				return false
			}
		}
		return true
	})
	return c
}

// secure bootstraps the ACLs of the cluster the first server created and
// makes the join tokens the others use.
func (c *Cluster) secure(first *Node) {
	c.t.Helper()
	c.CACert = first.Agent().CACertFile()
	c.WaitLeader(15 * time.Second)
	ctx := Ctx(c.t, 15*time.Second)
	anon := first.ClientWithToken(c.t, "")
	defer anon.Close()
	boot, err := anon.ACLBootstrap(ctx)
	if err != nil {
		c.t.Fatalf("acl bootstrap: %v", err)
	}
	c.Token = boot.SecretID
	mgmt := first.Client(c.t)
	defer mgmt.Close()
	for role, dst := range map[string]*string{"server": &c.ServerToken, "client": &c.ClientToken} {
		jt, err := mgmt.JoinTokenCreate(ctx, &api.JoinTokenRequest{Role: role, Description: "testcluster " + role + "s"})
		if err != nil {
			c.t.Fatalf("creating a %s join token: %v", role, err)
		}
		*dst = jt.Token
	}
}

func (c *Cluster) startNode(n *Node, first bool) error {
	cfg := n.Config
	if err := cfg.Finalize(); err != nil {
		return err
	}
	a, err := agent.New(cfg, c.logger)
	if err != nil {
		return err
	}
	if first {
		// Pin the ephemeral ports so a restart comes back on the same ones.
		self := a.Self()
		n.Config.Ports = portsOf(self)
		n.Config.Ephemeral = false
	}
	n.mu.Lock()
	n.agent = a
	n.mu.Unlock()
	return nil
}

func portsOf(s api.AgentSelf) config.Ports {
	var p config.Ports
	fmt.Sscanf(afterColon(s.APIAddr), "%d", &p.HTTP)
	fmt.Sscanf(afterColon(s.GossipAddr), "%d", &p.Gossip)
	if s.RPCAddr != "" {
		fmt.Sscanf(afterColon(s.RPCAddr), "%d", &p.RPC)
	} else {
		p.RPC = p.HTTP + 1 // unused by clients; only needs to differ
		if p.RPC == p.Gossip {
			p.RPC++
		}
	}
	return p
}

func afterColon(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return s[i+1:]
		}
	}
	return s
}

// Stop stops every running agent gracefully (without leaving, so it is
// quick): used as the test cleanup.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		if a := n.Agent(); a != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = a.Kill()
			}()
		}
	}
	wg.Wait()
	for _, n := range c.Nodes {
		n.mu.Lock()
		n.agent = nil
		n.mu.Unlock()
	}
}

// take detaches n's running agent for stopping; the test fails if n is
// not running.
func (c *Cluster) take(n *Node) *agent.Agent {
	c.t.Helper()
	n.mu.Lock()
	a := n.agent
	n.agent = nil
	n.mu.Unlock()
	if a == nil {
		c.t.Fatalf("node %s is already stopped", n.Name)
	}
	return a
}

// Kill stops a node abruptly, as a crash would: no leave, no hand-over.
func (c *Cluster) Kill(n *Node) {
	c.t.Helper()
	if err := c.take(n).Kill(); err != nil {
		c.t.Logf("kill %s: %v", n.Name, err)
	}
}

// Crash stops a node abruptly but leaves its replicas running, as when
// the agent process is killed and the processes it started are not.
func (c *Cluster) Crash(n *Node) {
	c.t.Helper()
	if err := c.take(n).Crash(); err != nil {
		c.t.Logf("crash %s: %v", n.Name, err)
	}
}

// Leave stops a node gracefully.
func (c *Cluster) Leave(n *Node) {
	c.t.Helper()
	a := c.take(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Leave(ctx); err != nil {
		c.t.Logf("leave %s: %v", n.Name, err)
	}
}

// Restart starts a stopped node again from its data dir, joining the
// running nodes.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	var join []string
	for _, o := range c.Nodes {
		if a := o.Agent(); a != nil && o != n {
			join = append(join, a.APIAddr())
		}
	}
	n.Config.RetryJoin = join
	if err := c.startNode(n, false); err != nil {
		c.t.Fatalf("restarting %s: %v", n.Name, err)
	}
}

// StartNode starts a stopped node again with its Config as it is now
// (Restart sets the join addresses first; this does not).
func (c *Cluster) StartNode(n *Node) error { return c.startNode(n, false) }

// Node returns the node with the given name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// Running returns the nodes whose agents run.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Agent() != nil {
			out = append(out, n)
		}
	}
	return out
}

// Leader returns the running node that leads, or nil.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Running() {
		if s := n.Agent().Server(); s != nil && s.IsLeader() {
			return n
		}
	}
	return nil
}

// WaitLeader waits until a running server leads and every running server
// agrees on it, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	c.WaitFor(timeout, "a leader that every server agrees on", func() bool {
		leader = c.Leader()
		if leader == nil || leader.Agent().Server().Store().ClusterID() == "" {
			return false
		}
		for _, n := range c.Running() {
			if s := n.Agent().Server(); s != nil {
				if name, _ := s.Leader(); name != leader.Name {
					return false
				}
			}
		}
		return true
	})
	return leader
}

// WaitFor polls cond every 10ms until it holds, failing the test after
// timeout with what it waited for.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	WaitFor(c.t, timeout, what, cond)
}

// WaitFor polls cond every 10ms until it holds, failing t after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ctx returns a context that ends when the test does or after d.
func Ctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
