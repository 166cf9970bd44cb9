// Package agent builds a herd agent from its configuration. It is the one
// place that knows every part, and the order they start and stop in:
//
//	start: data dir → listeners → gossip → Raft server → HTTP API → join
//	stop:  leave Raft → leave gossip → HTTP API → Raft → gossip → data dir
//
// The API stops before Raft so that no request is accepted that could not
// be served; gossip stops last so that the others learn about a graceful
// leave before the connections close.
package agent

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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/driver/docker"
	"github.com/herd-cluster/herd/internal/gateway"
	"github.com/herd-cluster/herd/internal/httpapi"
	"github.com/herd-cluster/herd/internal/logging"
	"github.com/herd-cluster/herd/internal/membership"
	"github.com/herd-cluster/herd/internal/server"
	"github.com/herd-cluster/herd/internal/supervisor"
	"github.com/herd-cluster/herd/internal/ui"
	"github.com/herd-cluster/herd/internal/version"
)

// Agent is a running herd agent.
type Agent struct {
	cfg    config.Config
	logger *slog.Logger

	dataDir    string
	tempDir    bool
	unlockData func()

	registry *prometheus.Registry
	sec      *nodeSecurity // nil with security off
	// monitor streams this agent's logs to `herd monitor`.
	monitor *logging.Monitor
	// devMu guards devToken, the dev cluster's management token.
	devMu    sync.Mutex
	devToken string
	// secCancel stops the certificate renewal and keyring loops.
	secCancel context.CancelFunc
	audit     *auditLog
	gossip    *membership.Membership
	server    *server.Server // nil on clients
	httpSrv   *http.Server
	httpLn    net.Listener

	advertise string

	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopOnce sync.Once
	stopErr  error

	// gateway is the load-balancing gateway (nil when not configured).
	gateway *gateway.Gateway
	// tlsCerts are the gateway's certificate files, checked at start.
	tlsCerts  []gateway.CertFile
	accessLog *accessLogger
	// gatewayOnce makes stopping the gateway (on leave, then on stop)
	// happen once; gatewayErr is its result.
	gatewayOnce sync.Once
	gatewayErr  error
	// gatewayStopping is set as the gateway starts to drain.
	gatewayStopping atomic.Bool
	// vip is the VIP manager (nil when this agent holds no VIPs).
	vip *vipState

	// supervisor runs this node's replicas (nil when workloads are
	// disabled); wlClient is its client of the agent's own API and docker
	// the docker driver (nil without one).
	supervisor *supervisor.Supervisor
	wlClient   *api.Client
	docker     *docker.Driver
}

// New starts an agent. cfg must have been finalized (config.Finalize).
// logger nil discards logs.
func New(cfg config.Config, logger *slog.Logger) (*Agent, error) {
	return NewContext(context.Background(), cfg, logger)
}

// NewContext is New with a context that bounds the start: the wait for
// security.token_file and the attempts to join with the token. Once
// NewContext has returned, the context has no effect: stop the agent with
// Leave or Kill.
func NewContext(startCtx context.Context, cfg config.Config, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = logging.Discard()
	}
	monitor := logging.NewMonitor()
	logger = slog.New(monitor.Handler(logger.Handler()))
	a := &Agent{cfg: cfg, logger: logger.With("node", cfg.NodeName), registry: prometheus.NewRegistry(), monitor: monitor}
	var err error
	ok := false
	defer func() {
		if !ok {
			a.abort()
		}
	}()

	// Certificate files are checked before anything is bound or locked.
	if a.tlsCerts, err = checkTLSFiles(cfg.Gateway.TLS); err != nil {
		return nil, err
	}
	a.dataDir = cfg.DataDir
	if a.dataDir == "" && cfg.Dev {
		dir, err := os.MkdirTemp("", "herd-dev-")
		if err != nil {
			return nil, fmt.Errorf("creating dev data dir: %w", err)
		}
		a.dataDir, a.tempDir = dir, true
	}
	if a.unlockData, err = openDataDir(a.dataDir, cfg.NodeName); err != nil {
		return nil, err
	}

	a.advertise, err = advertiseAddr(cfg)
	if err != nil {
		return nil, err
	}
	port := func(p int) int {
		if p == 0 && cfg.Ephemeral {
			return 0
		}
		return p
	}
	if a.sec, err = setupSecurity(startCtx, cfg, a.dataDir, []net.IP{net.ParseIP(a.advertise)}, a.logger); err != nil {
		return nil, err
	}
	bootstrapDue, err := a.prepareBootstrapDir()
	if err != nil {
		return nil, err
	}
	if a.sec != nil && a.sec.init != nil && cfg.BootstrapExpect == 0 {
		// The server that created the cluster CA is the cluster's first
		// member: it bootstraps alone; the others join with tokens.
		cfg.BootstrapExpect = 1
	}
	if a.httpLn, err = net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(port(cfg.Ports.HTTP)))); err != nil {
		return nil, fmt.Errorf("HTTP API listener (ports.http): %w", err)
	}
	if a.sec != nil {
		a.httpLn = tls.NewListener(a.httpLn, a.sec.certs.APIServerConfig())
	}
	httpAddr := net.JoinHostPort(a.advertise, strconv.Itoa(a.httpLn.Addr().(*net.TCPAddr).Port))
	var rpcLn net.Listener
	rpcAddr := ""
	if cfg.Server {
		if rpcLn, err = net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(port(cfg.Ports.RPC)))); err != nil {
			return nil, fmt.Errorf("Raft RPC listener (ports.rpc): %w", err)
		}
		rpcAddr = net.JoinHostPort(a.advertise, strconv.Itoa(rpcLn.Addr().(*net.TCPAddr).Port))
	}

	role := "client"
	if cfg.Server {
		role = "server"
	}
	gossipPort := port(cfg.Ports.Gossip)
	if gossipPort == 0 {
		// memberlist needs the same free port for TCP and UDP; find one.
		if gossipPort, err = freeUDPTCPPort(cfg.BindAddr); err != nil {
			return nil, err
		}
	}
	vipNet, err := a.vipNet()
	if err != nil {
		return nil, err
	}
	a.gossip, err = membership.New(membership.Config{
		NodeName:      cfg.NodeName,
		BindAddr:      cfg.BindAddr,
		BindPort:      gossipPort,
		AdvertiseAddr: a.advertise,
		Meta: membership.Meta{
			Role: role, Zone: cfg.Zone, Labels: cfg.Labels,
			APIAddr: httpAddr, RPCAddr: rpcAddr, Version: version.Version,
			VIPs: vipNet != nil,
		},
		Logger: a.logger.With("component", "gossip"),
		Keys:   a.sec.gossipKeys(),
	})
	if err != nil {
		if rpcLn != nil {
			rpcLn.Close()
		}
		return nil, err
	}

	if cfg.Server {
		adv, _ := net.ResolveTCPAddr("tcp", rpcAddr)
		a.server, err = server.New(server.Config{
			NodeName:          cfg.NodeName,
			DataDir:           a.dataDir,
			RPCListener:       rpcLn,
			AdvertiseAddr:     adv,
			BootstrapExpect:   cfg.BootstrapExpect,
			Raft:              cfg.Raft,
			DeadServerCleanup: cfg.DeadServerCleanup.D(),
			Gossip:            a.gossip,
			Logger:            a.logger,
			Registerer:        a.registry,
			Security:          a.sec.serverSecurity(cfg.Security.CertTTL.D()),
			LeaderTasks:       []func(context.Context){a.controllerTask(), a.autoscalerTask()},
		})
		if err != nil {
			rpcLn.Close()
			return nil, err
		}
	}

	a.registerMetrics()
	if a.audit, err = openAuditLog(cfg, a.dataDir); err != nil {
		return nil, err
	}
	handler := httpapi.New(httpapi.Config{
		Secure:      a.sec != nil,
		Monitor:     a.monitor,
		ClientTLS:   a.sec.clientTLS(),
		Audit:       a.audit.logger(),
		NodeName:    cfg.NodeName,
		Server:      a.server,
		Gossip:      a.gossip,
		Self:        a.Self,
		Registerer:  a.registry,
		Gatherer:    a.registry,
		UI:          ui.Handler(),
		EnableDebug: cfg.EnableDebug,
		Logger:      a.logger.With("component", "http"),
		Gateway:     a.gatewayServices,
		Logs:        a.replicaLogs,
		Usage:       a.replicaUsage,
	})
	a.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          logging.StdLog(a.logger, "http"),
	}
	// A graceful shutdown ends blocking queries and streams instead of
	// waiting for them (they would hold it up for minutes).
	a.httpSrv.RegisterOnShutdown(handler.Close)

	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.goFunc(func() {
		if err := a.httpSrv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("HTTP API stopped", "err", err)
		}
	})

	if len(cfg.Join) > 0 {
		if err := a.join(ctx, cfg.Join); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	if len(cfg.RetryJoin) > 0 {
		a.goFunc(func() { a.retryJoin(ctx, cfg.RetryJoin) })
	} else if len(cfg.Join) == 0 {
		// No join address configured (the server that created the
		// cluster, restarted): rejoin the peers it knew.
		if peers := loadPeers(a.dataDir); len(peers) > 0 {
			a.logger.Info("rejoining the members known before the restart", "addresses", peers)
			a.goFunc(func() { a.retryJoin(ctx, peers) })
		}
	}
	a.goFunc(func() { a.peersLoop(ctx) })
	// Members on the far side of a partition that outlasted gossip's
	// memory of the dead are joined again when it heals.
	a.goFunc(func() { a.gossip.Reconnect(ctx, 2*time.Second) })
	if a.sec != nil && !a.sec.byo {
		// Their own context: a leave stops them first, so that their
		// long-polls do not hold up the API's graceful shutdown.
		sctx, scancel := context.WithCancel(ctx)
		a.secCancel = scancel
		a.goFunc(func() { a.renewLoop(sctx) })
		a.goFunc(func() { a.keyringLoop(sctx) })
	}
	if a.sec != nil && a.sec.byo {
		a.goFunc(func() { a.ownCALoop(ctx) })
	}
	if bootstrapDue {
		a.goFunc(func() {
			if err := a.writeBootstrapFiles(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("writing the bootstrap files", "dir", cfg.Security.BootstrapDir, "err", err)
			}
		})
	}
	if err := a.startGateway(ctx); err != nil {
		return nil, err
	}
	if err := a.startWorkload(ctx, httpAddr); err != nil {
		return nil, err
	}
	if err := a.startVIP(ctx, vipNet); err != nil {
		return nil, err
	}
	ok = true
	a.logger.Info("agent started", "role", role, "api", a.APIURL(), "ui", a.APIURL()+"/ui/", "secure", a.sec != nil, "gossip", a.gossip.Addr(), "rpc", rpcAddr, "gateway", a.GatewayAddr(), "data_dir", a.dataDir)
	return a, nil
}

func (a *Agent) goFunc(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// gatewayServices reports the gateway's view for the API (nil: no gateway).
func (a *Agent) gatewayServices() []api.GatewayService {
	if a.gateway == nil {
		return nil
	}
	return a.gateway.Services()
}

// GatewayAddr is the HTTP gateway's listener address, "" if none.
func (a *Agent) GatewayAddr() string {
	if a.gateway == nil {
		return ""
	}
	return a.gateway.HTTPAddr()
}

// Gateway returns the gateway, nil when the agent runs none.
func (a *Agent) Gateway() *gateway.Gateway { return a.gateway }

// stopGateway drains the gateway: its listeners close and requests in
// flight get up to gatewayDrain to finish.
func (a *Agent) stopGateway() error {
	if a.gateway == nil {
		return nil
	}
	a.gatewayStopping.Store(true)
	a.gatewayOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), gatewayDrain)
		defer cancel()
		a.gatewayErr = a.gateway.Stop(ctx)
		a.accessLog.close()
	})
	return a.gatewayErr
}

// gatewayDrain bounds how long stopping the agent waits for the gateway's
// requests in flight.
const gatewayDrain = 10 * time.Second

// abort releases whatever New acquired before failing.
func (a *Agent) abort() {
	_ = a.stopGateway()
	if a.httpLn != nil {
		a.httpLn.Close()
	}
	if a.server != nil {
		_ = a.server.Shutdown()
	}
	if a.gossip != nil {
		_ = a.gossip.Shutdown()
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.httpSrv != nil {
		_ = a.httpSrv.Close()
	}
	a.wg.Wait()
	a.closeWorkload()
	a.audit.close()
	if a.unlockData != nil {
		a.unlockData()
	}
	if a.tempDir {
		os.RemoveAll(a.dataDir)
	}
}

// APIAddr is the host:port of the HTTP API.
func (a *Agent) APIAddr() string {
	return net.JoinHostPort(a.advertise, strconv.Itoa(a.httpLn.Addr().(*net.TCPAddr).Port))
}

// APIURL is the base URL of the HTTP API: https when secured.
func (a *Agent) APIURL() string {
	if a.sec != nil {
		return "https://" + a.APIAddr()
	}
	return "http://" + a.APIAddr()
}

// CACertFile is the PEM file of the cluster CA that API clients should
// trust ("" with security off).
func (a *Agent) CACertFile() string {
	switch {
	case a.sec == nil:
		return ""
	case a.sec.byo:
		return a.cfg.Security.CAFile
	}
	return filepath.Join(a.sec.dir, fileCA)
}

// GossipAddr is the host:port others join.
func (a *Agent) GossipAddr() string { return a.gossip.Addr() }

// Server returns the Raft server, nil on client agents.
func (a *Agent) Server() *server.Server { return a.server }

// Name is the node name.
func (a *Agent) Name() string { return a.cfg.NodeName }

// DataDir is where the agent keeps its state.
func (a *Agent) DataDir() string { return a.dataDir }

// Self describes the agent for /v1/agent/self.
func (a *Agent) Self() api.AgentSelf {
	s := api.AgentSelf{
		Name: a.cfg.NodeName, Role: "client", Zone: a.cfg.Zone, Labels: a.cfg.Labels,
		Version: version.Version, APIAddr: a.APIAddr(), GossipAddr: a.gossip.Addr(),
		UIURL: a.APIURL() + "/ui/",
	}
	if a.server != nil {
		s.Role = "server"
		s.RPCAddr = a.server.RPCAddr()
		s.Leader, s.LeaderAddr = a.server.Leader()
		s.ClusterID = a.server.Store().ClusterID()
		st := a.server.Stats()
		s.Raft = map[string]string{}
		for _, k := range []string{"state", "term", "last_log_index", "commit_index", "applied_index", "last_contact", "num_peers"} {
			s.Raft[k] = st[k]
		}
	}
	return s
}

func (a *Agent) registerMetrics() {
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herd_gossip_decrypt_failures_total",
		Help: "Gossip messages dropped because no installed key decrypts them (a wrong key, or plaintext sent to an encrypted cluster).",
	}, func() float64 { return float64(a.gossip.DecryptFailures()) }))
	if a.sec != nil {
		a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herd_tls_certificate_expiry_timestamp_seconds",
			Help: "When this node's certificate expires (Unix time); it is renewed at two thirds of its lifetime.",
		}, func() float64 { return float64(a.sec.certs.Leaf().NotAfter.Unix()) }))
	}
	for _, st := range []string{api.MemberAlive, api.MemberFailed, api.MemberLeft} {
		a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "herd_members",
			Help:        "Members known to this agent's gossip, by state.",
			ConstLabels: prometheus.Labels{"state": st},
		}, func() float64 {
			n := 0
			for _, m := range a.gossip.Members() {
				if m.Status == st {
					n++
				}
			}
			return float64(n)
		}))
	}
}

// Registry is the agent's metrics registry.
func (a *Agent) Registry() *prometheus.Registry { return a.registry }

// Leave stops the agent gracefully: the gateway drains (its listeners
// close, its requests in flight finish), a leader hands over leadership,
// the others are told this node leaves (so a server is removed from the
// Raft configuration at once), in-flight API requests finish, then
// everything stops. ctx bounds the whole sequence.
func (a *Agent) Leave(ctx context.Context) error {
	a.stopOnce.Do(func() {
		a.logger.Info("leaving cluster")
		if a.secCancel != nil {
			a.secCancel()
		}
		if err := a.stopGateway(); err != nil {
			a.logger.Warn("gateway drain", "err", err)
		}
		a.stopVIP()
		if a.server != nil {
			if err := a.server.Leave(ctx); err != nil {
				a.logger.Warn("raft leave", "err", err)
			}
		}
		if err := a.gossip.Leave(2 * time.Second); err != nil {
			a.logger.Warn("gossip leave", "err", err)
		}
		if a.server != nil {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			a.server.WaitRemoved(wctx)
			cancel()
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := a.httpSrv.Shutdown(sctx); err != nil {
			_ = a.httpSrv.Close()
		}
		cancel()
		a.stopErr = a.stop()
		a.logger.Info("agent stopped")
	})
	return a.stopErr
}

// Kill stops the agent at once without telling anyone, as a crash would
// (its data on disk stays as it is). Used by tests.
func (a *Agent) Kill() error {
	a.stopOnce.Do(func() {
		_ = a.httpSrv.Close()
		a.stopErr = a.stop()
	})
	return a.stopErr
}

// Crash is Kill without stopping the replicas this agent runs, as when
// the agent process dies and its replicas do not. Used by tests.
func (a *Agent) Crash() error {
	if a.supervisor != nil {
		a.supervisor.KeepReplicasOnExit()
	}
	return a.Kill()
}

func (a *Agent) stop() error {
	var errs []error
	if err := a.stopGateway(); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	a.cancel()
	_ = a.httpSrv.Close()
	if a.server != nil {
		if err := a.server.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.gossip.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	a.wg.Wait()
	a.closeWorkload()
	a.audit.close()
	a.unlockData()
	if a.tempDir {
		if err := os.RemoveAll(a.dataDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// advertiseAddr picks the address others reach this agent at.
func advertiseAddr(cfg config.Config) (string, error) {
	if cfg.AdvertiseAddr != "" {
		return cfg.AdvertiseAddr, nil
	}
	ip := net.ParseIP(cfg.BindAddr)
	if !ip.IsUnspecified() {
		return cfg.BindAddr, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("advertise_addr: not set and interfaces unreadable: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && n.IP.IsPrivate() {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("advertise_addr: not set, bind_addr is 0.0.0.0 and no private IPv4 address was found; set advertise_addr")
}

// freeUDPTCPPort finds a port free for both TCP and UDP on addr.
func freeUDPTCPPort(addr string) (int, error) {
	for range 50 {
		tl, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			return 0, fmt.Errorf("finding a free gossip port: %w", err)
		}
		p := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort(addr, strconv.Itoa(p)))
		tl.Close()
		if err == nil {
			ul.Close()
			return p, nil
		}
	}
	return 0, errors.New("finding a free gossip port: none free for both TCP and UDP")
}
