package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/agent"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/logging"
)

func newAgentCmd() *cobra.Command {
	var (
		file     string
		dev      bool
		nodeName string
		dataDir  string
		bind     string
		adv      string
		httpPort int
		gossip   int
		rpc      int
		srv      bool
		expect   int
		join     []string
		retry    []string
		zone     string
		labels   map[string]string
		logLevel string
		logFmt   string
		cleanup  time.Duration
		debug    bool

		gwHTTP    string
		gwHTTPS   string
		gwTCP     []int
		accessLog string

		token     string
		tokenFile string
		bootDir   string
		caFile    string
		certFile  string
		keyFile   string
		gossipKey string
		insecure  bool
		auditLog  string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a herd agent (server and/or client)",
		Long: `Run a herd agent. Servers (--server) hold the replicated state in Raft; clients
join the gossip pool and serve the API by forwarding to servers.

Settings come from --config (a strict YAML file: unknown fields are errors), then
flags, which win over the file. --dev starts a throw-away single-node cluster on
127.0.0.1 with its data in a temporary directory.

Security is on by default. The first server, started without --join, creates
the cluster: its CA, gossip key and certificate. Make the first management
token with "herd acl bootstrap", then a join token per kind of node with
"herd token create [--role server]"; a new node joins with --join (the API
address of any member) and --token, which it uses once to obtain its
certificate. Node-to-node traffic is mutual TLS, gossip is encrypted, and the
API (HTTPS) wants an ACL token. --bootstrap-dir makes the first server do the
token steps itself and write the tokens and the CA into a directory, and
--token-file makes a new node wait for its join token there (containers and
other scripted set-ups). To bring your own CA, give --ca-file,
--cert-file, --key-file and --gossip-key to every node. --insecure turns it
all off (plaintext, no ACLs): for benchmarks on a trusted network only.

Examples:
  herd agent --dev
  herd agent --server --data-dir /var/lib/herd                      # first server
  herd agent --server --data-dir /var/lib/herd --join 10.0.0.1 --token herd1.…
  herd agent --data-dir /var/lib/herd --retry-join 10.0.0.1 --token herd1.…
  herd agent --server --data-dir /var/lib/herd --bootstrap-dir /shared/herd    # first server, writes the tokens
  herd agent --server --data-dir /var/lib/herd --retry-join 10.0.0.1 --token-file /shared/herd/server.token
  herd agent --config /etc/herd/agent.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if file != "" {
				var err error
				if cfg, err = config.Load(file, cfg); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			set := func(name string, apply func()) {
				if f.Changed(name) {
					apply()
				}
			}
			set("node", func() { cfg.NodeName = nodeName })
			set("data-dir", func() { cfg.DataDir = dataDir })
			set("bind", func() { cfg.BindAddr = bind })
			set("advertise", func() { cfg.AdvertiseAddr = adv })
			set("http-port", func() { cfg.Ports.HTTP = httpPort })
			set("gossip-port", func() { cfg.Ports.Gossip = gossip })
			set("rpc-port", func() { cfg.Ports.RPC = rpc })
			set("server", func() { cfg.Server = srv })
			set("bootstrap-expect", func() { cfg.BootstrapExpect = expect })
			set("join", func() { cfg.Join = join })
			set("retry-join", func() { cfg.RetryJoin = retry })
			set("zone", func() { cfg.Zone = zone })
			set("label", func() { cfg.Labels = labels })
			set("log-level", func() { cfg.LogLevel = logLevel })
			set("log-format", func() { cfg.LogFormat = logFmt })
			set("dead-server-cleanup", func() { cfg.DeadServerCleanup = config.Duration(cleanup) })
			set("enable-debug", func() { cfg.EnableDebug = debug })
			set("gateway-http", func() { cfg.Gateway.HTTP = gwHTTP })
			set("gateway-https", func() { cfg.Gateway.HTTPS = gwHTTPS })
			set("gateway-tcp-port", func() { cfg.Gateway.TCPPorts = gwTCP })
			set("access-log", func() { cfg.Gateway.AccessLog = accessLog })
			set("token", func() { cfg.Security.Token = token })
			set("token-file", func() { cfg.Security.TokenFile = tokenFile })
			set("bootstrap-dir", func() { cfg.Security.BootstrapDir = bootDir })
			set("ca-file", func() { cfg.Security.CAFile = caFile })
			set("cert-file", func() { cfg.Security.CertFile = certFile })
			set("key-file", func() { cfg.Security.KeyFile = keyFile })
			set("gossip-key", func() { cfg.Security.GossipKey = gossipKey })
			set("insecure", func() { cfg.Security.Disabled = insecure })
			set("audit-log", func() { cfg.Security.AuditLog = auditLog })
			cfg.Dev = dev
			if err := cfg.Finalize(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			return runAgent(cmd, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "config", "c", "", "YAML config file (strict: unknown fields are errors)")
	f.BoolVar(&dev, "dev", false, "run a single-node dev cluster on 127.0.0.1 with data in a temp dir")
	f.StringVar(&nodeName, "node", "", "node name, unique in the cluster (default: hostname; \"dev\" with --dev)")
	f.StringVar(&dataDir, "data-dir", "", "directory for the Raft log, snapshots and node identity")
	f.StringVar(&bind, "bind", "", "IP address to listen on (default 0.0.0.0; 127.0.0.1 with --dev)")
	f.StringVar(&adv, "advertise", "", "IP address other agents use to reach this one (default: the bind address or the first private IP)")
	f.IntVar(&httpPort, "http-port", config.DefaultHTTPPort, "HTTP API and UI port")
	f.IntVar(&gossip, "gossip-port", config.DefaultGossipPort, "gossip port (TCP and UDP)")
	f.IntVar(&rpc, "rpc-port", config.DefaultRPCPort, "Raft port (servers)")
	f.BoolVar(&srv, "server", false, "be a server: hold the replicated state and vote in Raft")
	f.IntVar(&expect, "bootstrap-expect", 0, "servers to wait for before bootstrapping a new cluster")
	f.StringSliceVar(&join, "join", nil, "API address (host[:port]) of a member to join at start; fail if none answers (repeatable)")
	f.StringSliceVar(&retry, "retry-join", nil, "API address of a member to join, retried with back-off until one answers (repeatable)")
	f.StringVar(&zone, "zone", "", "failure zone of this node (rack, AZ)")
	f.StringToStringVar(&labels, "label", nil, "node label key=value (repeatable)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFmt, "log-format", "text", "text or json")
	f.DurationVar(&cleanup, "dead-server-cleanup", 30*time.Second, "remove a server from Raft after it has been failed this long")
	f.BoolVar(&debug, "enable-debug", false, "serve Go's profiler at /debug/pprof/ on the HTTP API")
	f.StringVar(&gwHTTP, "gateway-http", "", "run the HTTP gateway on this host:port (default: off; 127.0.0.1:7780 with --dev)")
	f.StringVar(&gwHTTPS, "gateway-https", "", "run the HTTPS gateway (HTTP/2 and HTTP/1.1, certificates by SNI) on this host:port (default: off)")
	f.IntSliceVar(&gwTCP, "gateway-tcp-port", nil, "run a TCP gateway listener on this port, for tcp services (repeatable)")
	f.StringVar(&accessLog, "access-log", "", "write the gateway's JSON access log to stdout or to this file (default: none)")
	f.StringVar(&token, "token", "", "join token (from `herd token create`) to obtain this node's certificate on its first start")
	f.StringVar(&tokenFile, "token-file", "", "read the join token from this file, waiting until it exists (e.g. server.token in the first server's --bootstrap-dir); not with --token")
	f.StringVar(&bootDir, "bootstrap-dir", "", "when this server creates a new cluster: bootstrap the ACLs and write management.token, server.token, client.token (join tokens valid 24h) and ca.pem into this directory")
	f.StringVar(&caFile, "ca-file", "", "your own CA: the CA certificate (PEM); with --cert-file, --key-file and --gossip-key")
	f.StringVar(&certFile, "cert-file", "", "your own CA: this node's certificate (CN node name, OU role, IP SAN advertise address)")
	f.StringVar(&keyFile, "key-file", "", "your own CA: this node's private key")
	f.StringVar(&gossipKey, "gossip-key", "", "your own CA: the gossip encryption key (32 bytes, base64), the same on every node")
	f.BoolVar(&insecure, "insecure", false, "turn security off: plaintext everywhere, no ACLs (benchmarks on a trusted network only)")
	f.StringVar(&auditLog, "audit-log", "", `where API writes are logged as JSON lines: a file, "stdout" or "off" (default: audit.log in the data dir)`)
	return cmd
}

// defaultGCPercent is the Go GC target the agent runs with unless GOGC is
// set: the cluster state lives in memory and is rewritten on every write,
// and at the default of 100 the collector took a measurable share of a
// busy server's CPU (64-client puts: about 3300-3600 ops/s at 100 against
// 3800-4000 at 200 in alternating runs on the 2-core bench machine).
const defaultGCPercent = 200

func runAgent(cmd *cobra.Command, cfg config.Config) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	logger := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	start := time.Now()
	// An interrupt also ends the start, which may wait for --token-file.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := agent.NewContext(ctx, cfg, logger)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if cfg.Dev {
		if err := waitLeader(ctx, a, 10*time.Second); err != nil {
			logger.Warn("no leader yet", "err", err)
		}
		fmt.Fprintf(out, "herd dev agent ready in %s\n", time.Since(start).Round(time.Millisecond))
		kept := "removed on exit"
		if cfg.DataDir != "" {
			kept = "kept"
		}
		fmt.Fprintf(out, "  API:  %s\n  UI:   %s/ui/\n", a.APIURL(), a.APIURL())
		if gw := a.GatewayAddr(); gw != "" {
			fmt.Fprintf(out, "  gateway: http://%s (routes the services you apply: herd apply -f service.yaml)\n", gw)
		}
		if g := a.Gateway(); g != nil && g.HTTPSAddr() != "" {
			fmt.Fprintf(out, "  gateway: https://%s\n", g.HTTPSAddr())
		}
		fmt.Fprintf(out, "  data: %s (%s)\n", a.DataDir(), kept)
		if ca := a.CACertFile(); ca != "" {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			tok, err := a.DevToken(tctx)
			cancel()
			if err != nil {
				logger.Warn("no management token for the dev cluster", "err", err)
				tok = "(none: run herd acl bootstrap)"
			}
			fmt.Fprintf(out, "TLS and ACLs are on. Paste this to use the CLI:\n  export HERD_ADDR=%s HERD_CACERT=%s HERD_TOKEN=%s\n", a.APIURL(), ca, tok)
			fmt.Fprintln(out, "Try:  herd members; herd kv put hello world")
		} else {
			fmt.Fprintf(out, "Try:  export HERD_ADDR=%s; herd members; herd kv put hello world\n", a.APIURL())
		}
	} else {
		fmt.Fprintf(out, "herd agent %q running: API %s, UI %s/ui/, gossip %s\n", cfg.NodeName, a.APIURL(), a.APIURL(), a.GossipAddr())
		if ca := a.CACertFile(); ca != "" {
			fmt.Fprintf(out, "  cluster CA: %s (HERD_CACERT for the CLI)\n", ca)
		}
		if gw := a.GatewayAddr(); gw != "" {
			fmt.Fprintf(out, "  gateway: http://%s\n", gw)
		}
		if g := a.Gateway(); g != nil && g.HTTPSAddr() != "" {
			fmt.Fprintf(out, "  gateway: https://%s\n", g.HTTPSAddr())
		}
	}
	<-ctx.Done()
	stop()
	fmt.Fprintln(out, "leaving the cluster (interrupt again to force)")
	lctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sig:
			cancel()
		case <-lctx.Done():
		}
		signal.Stop(sig)
	}()
	return a.Leave(lctx)
}

func waitLeader(ctx context.Context, a *agent.Agent, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if s := a.Server(); s != nil {
			if name, _ := s.Leader(); name != "" && (!s.IsLeader() || s.Store().ClusterID() != "") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no leader after %s", limit)
}
