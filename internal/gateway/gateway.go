// Package gateway is herd's load-balancing front door: it watches the
// cluster's services, keeps a routing table and per-service balancers,
// health state and retry budgets, and serves HTTP (through the proxy
// engine) and TCP listeners. A change of services swaps in a new routing
// table atomically: no reload, no dropped connection.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/health"
	"github.com/herd-cluster/herd/internal/proxy"
	"github.com/herd-cluster/herd/internal/routing"
)

// Source delivers the cluster's services.
type Source interface {
	// Services returns the services once their index is above index
	// (blocking until then, or until ctx ends), and their index.
	Services(ctx context.Context, index uint64) ([]*api.ServiceEntry, uint64, error)
}

// Config configures a Gateway.
type Config struct {
	// HTTP is the address of the HTTP listener ("" = none). It serves
	// HTTP/1.x and HTTP/2 with prior knowledge (h2c).
	HTTP string
	// HTTPS is the address of the TLS listener ("" = none). It offers h2
	// and http/1.1 by ALPN and picks the certificate by SNI.
	HTTPS string
	// TLSCerts are certificate files for HTTPS, re-read when their
	// modification time changes. The first certificate (files first, then
	// KV keys in order) is the default for unknown or missing names.
	TLSCerts []CertFile
	// KV and TLSKVPrefix: every KV pair under the prefix whose value is a
	// PEM certificate chain followed by its PEM private key is a
	// certificate too, followed with blocking queries. Nil KV or an empty
	// prefix: none.
	KV          KVSource
	TLSKVPrefix string
	// TLSReloadInterval is how often the certificate files are checked;
	// default 2s. TLSHandshakeTimeout bounds a TLS handshake; default 10s.
	TLSReloadInterval, TLSHandshakeTimeout time.Duration
	// TCPPorts are the ports of TCP listeners, bound on TCPHost; TCP
	// services route by these ports.
	TCPPorts []int
	TCPHost  string
	// Zone is this agent's zone, for zone-aware balancing.
	Zone string
	// Source delivers the services.
	Source Source
	// Logger; nil discards. AccessLog, when set, receives every request.
	Logger    *slog.Logger
	AccessLog func(*proxy.AccessEntry)
	// HealthEvent, if set, receives every health transition of every
	// service (a backend failing or passing its checks, ejected or
	// restored, panic mode on or off). It must not block.
	HealthEvent func(health.Event)
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Clock drives health checks; nil is the real clock.
	Clock health.Clock
	// ReadHeaderTimeout and IdleTimeout of client connections (defaults
	// 10s and 60s).
	ReadHeaderTimeout, IdleTimeout time.Duration
}

// Gateway is a running gateway.
type Gateway struct {
	cfg     Config
	logger  *slog.Logger
	clock   health.Clock
	metrics *metrics

	table atomic.Pointer[table]

	// mu guards services (the runtimes by name) and index.
	mu       sync.Mutex
	services map[string]*service
	index    uint64

	httpLn  net.Listener
	httpSrv *proxy.Server
	tcpLns  []net.Listener

	// HTTPS: the listener, the engine for its HTTP/1.1 connections, the
	// certificates.
	httpsLn  net.Listener
	httpsSrv *proxy.Server
	certs    *certStore
	tlsConf  *tls.Config
	// h2 serves HTTP/2 clients (TLS h2 and h2c).
	h2 *h2Conns

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{}
}

// table is one immutable routing snapshot.
type table struct {
	http *routing.Table[*service]
}

// New binds the gateway's listeners; Run serves them.
func New(cfg Config) (*Gateway, error) {
	if cfg.Source == nil {
		return nil, errors.New("gateway: no service source")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = health.RealClock()
	}
	if cfg.TLSReloadInterval <= 0 {
		cfg.TLSReloadInterval = 2 * time.Second
	}
	if cfg.TLSHandshakeTimeout <= 0 {
		cfg.TLSHandshakeTimeout = 10 * time.Second
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	g := &Gateway{cfg: cfg, logger: cfg.Logger, clock: cfg.Clock, metrics: newMetrics(cfg.Registerer),
		services: map[string]*service{}, ready: make(chan struct{}), h2: newH2Conns(idle)}
	if cfg.HTTPS != "" {
		certs, err := newCertStore(cfg.TLSCerts, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("gateway HTTPS: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.HTTPS)
		if err != nil {
			return nil, fmt.Errorf("gateway HTTPS listener (gateway.https, --gateway-https): %w", err)
		}
		g.certs, g.httpsLn = certs, ln
		g.tlsConf = &tls.Config{
			GetCertificate: certs.getCertificate,
			NextProtos:     []string{http2.NextProtoTLS, "http/1.1"},
			MinVersion:     tls.VersionTLS12,
		}
		g.httpsSrv = proxy.NewServer(proxy.Config{
			Director: g, Logger: cfg.Logger, AccessLog: cfg.AccessLog, ForwardedProto: "https",
			ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
		})
	}
	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			g.closeListeners()
			return nil, fmt.Errorf("gateway HTTP listener (gateway.http, --gateway-http): %w", err)
		}
		g.httpLn = ln
		g.httpSrv = proxy.NewServer(proxy.Config{
			Director: g, Logger: cfg.Logger, AccessLog: cfg.AccessLog, ForwardedProto: "http",
			ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout,
			H2C: g.serveH2C,
		})
	}
	for _, p := range cfg.TCPPorts {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.TCPHost, strconv.Itoa(p)))
		if err != nil {
			g.closeListeners()
			return nil, fmt.Errorf("gateway TCP listener on port %d (gateway.tcp_ports): %w", p, err)
		}
		g.tcpLns = append(g.tcpLns, ln)
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herd_gateway_active_connections",
			Help: "Client connections open on the gateway's HTTP and HTTPS listeners (HTTP/1.1 and HTTP/2).",
		}, g.activeConns))
	}
	return g, nil
}

// activeConns counts the client connections open now.
func (g *Gateway) activeConns() float64 {
	n := 0
	for _, s := range []*proxy.Server{g.httpSrv, g.httpsSrv} {
		if s != nil {
			n += s.ActiveConns()
		}
	}
	if g.h2 != nil {
		g.h2.mu.Lock()
		n += len(g.h2.conns)
		g.h2.mu.Unlock()
	}
	return float64(n)
}

func (g *Gateway) closeListeners() {
	if g.httpLn != nil {
		g.httpLn.Close()
	}
	if g.httpsLn != nil {
		g.httpsLn.Close()
	}
	for _, ln := range g.tcpLns {
		ln.Close()
	}
}

// HTTPAddr is the bound HTTP listener's address ("" if none).
func (g *Gateway) HTTPAddr() string {
	if g.httpLn == nil {
		return ""
	}
	return g.httpLn.Addr().String()
}

// TCPAddrs are the bound TCP listeners' addresses, in TCPPorts order.
func (g *Gateway) TCPAddrs() []string {
	out := make([]string, len(g.tcpLns))
	for i, ln := range g.tcpLns {
		out[i] = ln.Addr().String()
	}
	return out
}

// Start begins watching services and serving. Stop ends both.
func (g *Gateway) Start(ctx context.Context) {
	g.ctx, g.cancel = context.WithCancel(ctx)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.watch()
	}()
	if g.httpSrv != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.httpSrv.Serve(g.httpLn); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, proxy.ErrServerClosed) {
				g.logger.Error("gateway: HTTP listener stopped", "err", err)
			}
		}()
	}
	if g.httpsLn != nil {
		g.wg.Add(2)
		go func() {
			defer g.wg.Done()
			g.serveHTTPS(g.httpsLn)
		}()
		go func() {
			defer g.wg.Done()
			g.certs.watchFiles(g.ctx, g.cfg.TLSReloadInterval)
		}()
		if g.cfg.KV != nil && g.cfg.TLSKVPrefix != "" {
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				g.certs.watchKV(g.ctx, g.cfg.KV, g.cfg.TLSKVPrefix)
			}()
		}
	}
	for i, ln := range g.tcpLns {
		port := g.cfg.TCPPorts[i]
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serveTCP(ln, port)
		}()
	}
}

// Ready is closed once the first service list has been applied.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// Stop drains the gateway: listeners close, requests in flight finish
// (until ctx ends; HTTP/2 clients get a GOAWAY), health checks and
// certificate reloads stop.
func (g *Gateway) Stop(ctx context.Context) error {
	var errs []error
	if g.httpSrv != nil {
		errs = append(errs, g.httpSrv.Shutdown(ctx))
	}
	g.closeListeners()
	if g.httpsSrv != nil {
		errs = append(errs, g.httpsSrv.Shutdown(ctx))
	}
	errs = append(errs, g.h2.shutdown(ctx))
	err := errors.Join(errs...)
	if g.cancel != nil {
		g.cancel()
	}
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.services {
		s.stop(false)
		for _, b := range s.order {
			b.up.Close()
			b.std.closeIdle()
		}
	}
	g.services = map[string]*service{}
	return err
}

// watch applies the service list whenever it changes, until ctx ends.
func (g *Gateway) watch() {
	var index uint64
	backoff := 100 * time.Millisecond
	for g.ctx.Err() == nil {
		list, idx, err := g.cfg.Source.Services(g.ctx, index)
		if err != nil {
			if g.ctx.Err() != nil {
				return
			}
			g.logger.Warn("gateway: reading services failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-g.ctx.Done():
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if idx < index {
			idx = 0 // the source was reset (a snapshot restore): read afresh
		}
		if idx != index || index == 0 {
			g.apply(list, idx)
		}
		index = idx
	}
}

// apply makes the gateway run exactly the given services.
func (g *Gateway) apply(list []*api.ServiceEntry, idx uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := map[string]*service{}
	var retired []*backend
	var stopped []*service
	for _, e := range list {
		old := g.services[e.Name]
		// The store gives every change of a service a new ModifyIndex.
		if old != nil && e.ModifyIndex != 0 && old.modifyIndex == e.ModifyIndex {
			next[e.Name] = old
			continue
		}
		s, r := g.newService(g.ctx, e.Service, old)
		s.modifyIndex = e.ModifyIndex
		next[e.Name] = s
		retired = append(retired, r...)
		if old != nil {
			old.stop(s.group == old.group)
		}
	}
	for name, old := range g.services {
		if next[name] == nil {
			stopped = append(stopped, old)
			retired = append(retired, old.order...)
		}
	}
	var entries []routing.Entry[*service]
	names := make([]string, 0, len(next))
	for name := range next {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := next[name]
		for _, r := range s.spec.Routes {
			if s.spec.Protocol == "tcp" {
				entries = append(entries, routing.Entry[*service]{Port: r.Port, Value: s})
				continue
			}
			entries = append(entries, routing.Entry[*service]{Host: r.Host, PathPrefix: r.PathPrefix, Value: s})
		}
	}
	rt, err := routing.Build(entries)
	if err != nil {
		// The servers refuse conflicting routes; keep serving the old
		// table rather than drop traffic.
		g.logger.Error("gateway: routing table not updated", "err", err)
		return
	}
	g.table.Store(&table{http: rt})
	// Drop the metric series of what no longer runs.
	for name, old := range g.services {
		s := next[name]
		for _, b := range old.order {
			if s == nil || s.backends[b.spec.Address] == nil {
				g.metrics.forgetBackend(name, b.spec.Address)
			}
		}
		if s == nil {
			g.metrics.forgetService(name)
		}
	}
	g.services = next
	g.index = idx
	for _, s := range stopped {
		s.stop(false)
		g.logger.Info("gateway: service removed", "service", s.spec.Name)
	}
	for _, b := range retired {
		g.drain(b, next)
	}
	select {
	case <-g.ready:
	default:
		close(g.ready)
	}
	g.logger.Debug("gateway: services applied", "services", len(next), "index", idx)
}

// drain lets a retired backend's requests finish, then closes its
// connections, unless a current service still uses its upstream.
func (g *Gateway) drain(b *backend, current map[string]*service) {
	for _, s := range current {
		if nb := s.backends[b.spec.Address]; nb != nil && nb.up == b.up {
			return
		}
	}
	timeout := b.drainTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, timeout)
		defer cancel()
		if err := b.up.Drain(ctx); err != nil {
			g.logger.Warn("gateway: backend drain cut short", "backend", b.spec.Address, "err", err)
		}
		b.up.Close()
		b.std.closeIdle()
	}()
}

// Services reports every service as this gateway runs it.
func (g *Gateway) Services() []api.GatewayService {
	g.mu.Lock()
	list := make([]*service, 0, len(g.services))
	for _, s := range g.services {
		list = append(list, s)
	}
	g.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].spec.Name < list[j].spec.Name })
	now := g.clock.Now()
	out := make([]api.GatewayService, 0, len(list))
	for _, s := range list {
		out = append(out, s.status(now))
	}
	return out
}
