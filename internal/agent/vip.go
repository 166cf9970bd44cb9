package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/herd-cluster/herd/internal/netif"
	"github.com/herd-cluster/herd/internal/vip"
)

// vipState is the agent's part in floating addresses.
type vipState struct {
	mgr    *vip.Manager
	cancel context.CancelFunc
	done   chan struct{}
}

// vipNet decides whether this agent may hold VIPs, and returns where it
// changes addresses (nil when it may not): it runs a gateway, VIPs are not
// disabled, and it may change addresses. A configured namespace that
// cannot be opened is an error; missing privileges are logged and leave
// the agent out. Gossip tells the others the verdict.
func (a *Agent) vipNet() (vip.Net, error) {
	switch {
	case a.cfg.VIP.Disabled:
		return nil, nil
	case a.cfg.Gateway.HTTP == "" && a.cfg.Gateway.HTTPS == "":
		a.logger.Debug("VIPs: this agent runs no gateway, so it holds no VIP")
		return nil, nil
	}
	var net vip.Net = netif.Host{}
	if p := a.cfg.VIP.Netns; p != "" {
		ns, err := netif.OpenNamespace(p)
		if err != nil {
			return nil, fmt.Errorf("vip.netns: %w", err)
		}
		net = ns
	}
	if err := netif.Capable(); err != nil {
		a.logger.Warn("VIPs: this agent cannot hold floating addresses, so it is not eligible for any", "err", err)
		return nil, nil
	}
	return net, nil
}

// startVIP starts the VIP manager when vipNet said this agent may hold
// VIPs.
func (a *Agent) startVIP(ctx context.Context, net vip.Net) error {
	if net == nil || a.gateway == nil {
		return nil
	}
	client, err := a.apiClient(a.APIAddr())
	if err != nil {
		return fmt.Errorf("vip: %w", err)
	}
	// The watchdog that removes an address when this agent cannot: killed
	// or frozen. It starts with the first address this agent takes.
	fence := &lazyFence{a: a}
	cfg := vip.Config{
		Node: a.cfg.NodeName, Labels: a.cfg.Labels, Serving: a.gatewayServing,
		Net: net, Cluster: client, Fence: fence, Logger: a.logger.With("component", "vip"),
	}
	m := vip.New(cfg)
	vctx, cancel := context.WithCancel(ctx)
	a.vip = &vipState{mgr: m, cancel: cancel, done: make(chan struct{})}
	a.goFunc(func() {
		defer close(a.vip.done)
		defer client.Close()
		m.Run(vctx)
		if err := fence.Close(); err != nil {
			a.logger.Warn("VIPs: the fence watchdog ended badly", "err", err)
		}
	})
	return nil
}

// lazyFence starts the fence watchdog with the first address this agent
// takes, so that agents that never hold a VIP run no extra process. When
// it cannot start one, the agent logs so once and fences alone.
type lazyFence struct {
	a    *Agent
	mu   sync.Mutex
	f    *vip.ProcessFence
	err  error
	done bool
}

func (l *lazyFence) get() (*vip.ProcessFence, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		exe, err := os.Executable()
		if err == nil {
			l.f, err = vip.StartProcessFence(exe, l.a.cfg.VIP.Netns, &lineLog{log: l.a.logger})
		}
		if err != nil {
			l.err = err
			l.a.logger.Warn("VIPs: no fence watchdog; a killed or frozen agent would keep its VIP addresses", "err", err)
		}
	}
	return l.f, l.err
}

// Hold starts the watchdog if need be and hands it the fence time.
func (l *lazyFence) Hold(name, ifname string, p netip.Prefix, until time.Time) error {
	f, err := l.get()
	if err != nil {
		return err
	}
	return f.Hold(name, ifname, p, until)
}

// Drop tells a running watchdog to forget name.
func (l *lazyFence) Drop(name string) error {
	l.mu.Lock()
	f := l.f
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Drop(name)
}

// Close ends a running watchdog.
func (l *lazyFence) Close() error {
	l.mu.Lock()
	f := l.f
	l.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.Close()
}

// lineLog passes the fence watchdog's output lines to the agent's log.
type lineLog struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.log.Info("vip fence watchdog", "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

// stopVIP gives up this agent's VIPs (the addresses go first, then the
// releases, so the next holders need not wait out the leases) and stops
// the manager.
func (a *Agent) stopVIP() {
	if a.vip == nil {
		return
	}
	a.vip.cancel()
	<-a.vip.done
}

// gatewayServing reports whether this agent's gateway takes traffic: it
// is ready and not stopping.
func (a *Agent) gatewayServing() bool {
	if a.gateway == nil || a.gatewayStopping.Load() {
		return false
	}
	select {
	case <-a.gateway.Ready():
		return true
	default:
		return false
	}
}

// HeldVIPs returns the VIPs whose address this agent holds now.
func (a *Agent) HeldVIPs() []string {
	if a.vip == nil {
		return nil
	}
	return a.vip.mgr.Held()
}
