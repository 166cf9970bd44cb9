package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
	"github.com/herd-cluster/herd/internal/gateway"
	"github.com/herd-cluster/herd/internal/health"
	"github.com/herd-cluster/herd/internal/proxy"
	"github.com/herd-cluster/herd/internal/state"
)

// storeSource reads services from a server's own state store.
type storeSource struct{ store *state.Store }

func (s storeSource) Services(ctx context.Context, index uint64) ([]*api.ServiceEntry, uint64, error) {
	for {
		ws := memdb.NewWatchSet()
		ws.Add(s.store.AbandonCh())
		idx, list, err := s.store.ServiceListResolved(ws)
		if err != nil || idx != index {
			return list, idx, err
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return nil, 0, err
		}
	}
}

// KVList follows the KV pairs under prefix in the server's own store.
func (s storeSource) KVList(ctx context.Context, prefix string, index uint64) ([]*api.KVPair, uint64, error) {
	for {
		ws := memdb.NewWatchSet()
		ws.Add(s.store.AbandonCh())
		idx, list, err := s.store.KVList(ws, prefix)
		if err != nil || idx != index {
			return list, idx, err
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return nil, 0, err
		}
	}
}

// apiSource reads services through the agent's API (a client agent
// forwards to a server), with stale blocking queries.
type apiSource struct{ client *api.Client }

func (s apiSource) Services(ctx context.Context, index uint64) ([]*api.ServiceEntry, uint64, error) {
	list, meta, err := s.client.ServiceListResolved(ctx, &api.QueryOptions{WaitIndex: index, Stale: true})
	if err != nil {
		return nil, 0, err
	}
	return list, meta.Index, nil
}

// KVList follows the KV pairs under prefix through the agent's API.
func (s apiSource) KVList(ctx context.Context, prefix string, index uint64) ([]*api.KVPair, uint64, error) {
	list, meta, err := s.client.KVList(ctx, prefix, &api.QueryOptions{WaitIndex: index, Stale: true})
	if err != nil {
		return nil, 0, err
	}
	return list, meta.Index, nil
}

// checkTLSFiles loads every configured certificate once, so that a bad
// one stops the agent with the field named.
func checkTLSFiles(certs []config.TLSCert) ([]gateway.CertFile, error) {
	var out []gateway.CertFile
	for i, c := range certs {
		for _, f := range []struct{ field, path string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
			if _, err := os.Stat(f.path); err != nil {
				return nil, fmt.Errorf("gateway.tls[%d].%s: %w", i, f.field, err)
			}
		}
		cf := gateway.CertFile{CertFile: c.CertFile, KeyFile: c.KeyFile}
		if _, err := gateway.LoadCertFile(cf); err != nil {
			return nil, fmt.Errorf("gateway.tls[%d]: %w", i, err)
		}
		out = append(out, cf)
	}
	return out, nil
}

// accessLogger writes the gateway's access log as JSON lines.
type accessLogger struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
	c   io.Closer
}

func openAccessLog(dest string) (*accessLogger, error) {
	switch dest {
	case "":
		return nil, nil
	case "stdout":
		return &accessLogger{w: os.Stdout, enc: json.NewEncoder(os.Stdout)}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gateway access log (gateway.access_log): %w", err)
	}
	return &accessLogger{w: f, enc: json.NewEncoder(f), c: f}, nil
}

type accessRecord struct {
	Time       string  `json:"time"`
	Method     string  `json:"method"`
	Host       string  `json:"host"`
	Path       string  `json:"path"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Backend    string  `json:"backend,omitempty"`
	Attempts   int     `json:"attempts"`
	Retries    int     `json:"retries"`
	Client     string  `json:"client"`
	RequestID  string  `json:"request_id"`
}

func (l *accessLogger) log(e *proxy.AccessEntry) {
	rec := accessRecord{
		Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Method: e.Method, Host: e.Host, Path: e.Path,
		Status: e.Status, Bytes: e.Bytes, DurationMS: float64(e.Duration.Microseconds()) / 1000,
		Backend: e.Upstream, Attempts: e.Attempts, Retries: max(e.Attempts-1, 0), Client: e.RemoteAddr, RequestID: e.RequestID,
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(rec)
}

func (l *accessLogger) close() {
	if l != nil && l.c != nil {
		l.c.Close()
	}
}

// startGateway binds and starts the gateway when the config asks for one.
func (a *Agent) startGateway(ctx context.Context) error {
	gc := a.cfg.Gateway
	if gc.HTTP == "" && gc.HTTPS == "" && len(gc.TCPPorts) == 0 {
		return nil
	}
	var src interface {
		gateway.Source
		gateway.KVSource
	}
	if a.server != nil {
		src = storeSource{store: a.server.Store()}
	} else {
		c, err := a.apiClient(a.APIAddr())
		if err != nil {
			return err
		}
		src = apiSource{client: c}
	}
	al, err := openAccessLog(gc.AccessLog)
	if err != nil {
		return err
	}
	cfg := gateway.Config{
		HTTP: gc.HTTP, TCPPorts: gc.TCPPorts, TCPHost: a.cfg.BindAddr, Zone: a.cfg.Zone, Source: src,
		HTTPS: gc.HTTPS, TLSCerts: a.tlsCerts, KV: src, TLSKVPrefix: gc.TLSKVPrefix,
		Logger: a.logger.With("component", "gateway"), Registerer: a.registry,
	}
	if al != nil {
		cfg.AccessLog = al.log
	}
	fwd, err := a.newEventForwarder()
	if err != nil {
		al.close()
		return err
	}
	cfg.HealthEvent = fwd.add
	g, err := gateway.New(cfg)
	if err != nil {
		al.close()
		return err
	}
	a.gateway, a.accessLog = g, al
	g.Start(ctx)
	a.goFunc(func() { fwd.run(ctx) })
	return nil
}

// eventForwarder reports the gateway's health transitions to the cluster
// as events. The gateway hands them over without waiting; a bounded queue
// drops (and counts) what does not fit while the cluster is slow.
type eventForwarder struct {
	a       *Agent
	client  *api.Client
	queue   chan api.Event
	dropped atomic.Uint64
}

// eventQueue bounds the transitions waiting to be reported.
const eventQueue = 256

func (a *Agent) newEventForwarder() (*eventForwarder, error) {
	c, err := a.apiClient(a.APIAddr())
	if err != nil {
		return nil, err
	}
	f := &eventForwarder{a: a, client: c, queue: make(chan api.Event, eventQueue)}
	a.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "herd_gateway_events_dropped_total",
		Help: "Gateway health transitions not reported as cluster events because the queue to the cluster was full.",
	}, func() float64 { return float64(f.dropped.Load()) }))
	return f, nil
}

// add queues a transition as an event; it never blocks.
func (f *eventForwarder) add(e health.Event) {
	subject := e.Service + "/" + e.Addr
	ev := api.Event{Subject: subject, Attrs: map[string]string{"service": e.Service, "backend": e.Addr}}
	switch e.Kind {
	case health.EventUnhealthy:
		ev.Type, ev.Message = api.EventBackendEjected, fmt.Sprintf("%s failed its health checks on %s's gateway: %s", subject, f.a.cfg.NodeName, e.Reason)
		ev.Attrs["cause"] = "check"
	case health.EventEjected:
		ev.Type, ev.Message = api.EventBackendEjected, fmt.Sprintf("%s ejected by %s's gateway: %s", subject, f.a.cfg.NodeName, e.Reason)
		ev.Attrs["cause"] = "outlier"
	case health.EventHealthy, health.EventUneject:
		ev.Type, ev.Message = api.EventBackendRestored, fmt.Sprintf("%s back in rotation on %s's gateway", subject, f.a.cfg.NodeName)
	case health.EventPanic:
		ev.Type, ev.Subject, ev.Message = api.EventPanicMode, e.Service, fmt.Sprintf("service %s in panic mode on %s's gateway: too few healthy backends, routing to all", e.Service, f.a.cfg.NodeName)
		ev.Attrs = map[string]string{"service": e.Service, "state": "on"}
	case health.EventPanicOver:
		ev.Type, ev.Subject, ev.Message = api.EventPanicMode, e.Service, fmt.Sprintf("service %s out of panic mode on %s's gateway", e.Service, f.a.cfg.NodeName)
		ev.Attrs = map[string]string{"service": e.Service, "state": "off"}
	default:
		return
	}
	select {
	case f.queue <- ev:
	default:
		f.dropped.Add(1)
	}
}

// run reports the queued events until ctx ends.
func (f *eventForwarder) run(ctx context.Context) {
	defer f.client.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.queue:
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := f.client.PostEvent(cctx, &ev)
			cancel()
			if err != nil && ctx.Err() == nil {
				f.a.logger.Debug("reporting a gateway event", "type", ev.Type, "subject", ev.Subject, "err", err)
			}
		}
	}
}
