// Command benchproxy runs the proxy engine alone in front of a fixed list of
// backends, round robin, for load-balancer benchmarks
// (/work/shared/bench/lb-compare.sh). It is not part of herd.
//
//	benchproxy -listen 127.0.0.1:18095 -backends 127.0.0.1:18081,127.0.0.1:18082
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // profiling on -pprof only
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herd-cluster/herd/internal/proxy"
)

// plan tries one upstream, then the next one on a connect failure.
type plan struct {
	d *director
	i uint64
}

func (p *plan) Next(n int, prev proxy.Outcome) (*proxy.Upstream, bool) {
	if n > 0 && !prev.ConnectErr {
		return nil, false
	}
	if n >= len(p.d.ups) {
		return nil, false
	}
	return p.d.ups[(p.i+uint64(n))%uint64(len(p.d.ups))], true
}

func (p *plan) Done(proxy.Outcome, int) {}

type director struct {
	ups   []*proxy.Upstream
	plans []plan
	next  atomic.Uint64
}

// Direct returns a shared, stateless plan per starting upstream: no
// allocation per request.
func (d *director) Direct(*proxy.Request) (proxy.Plan, *proxy.LocalResponse) {
	i := (d.next.Add(1) - 1) % uint64(len(d.ups))
	return &d.plans[i], nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18095", "listen address")
	backends := flag.String("backends", "127.0.0.1:18081", "comma-separated backend addresses")
	maxIdle := flag.Int("idle", 128, "idle connections kept per backend")
	pprof := flag.String("pprof", "", "serve net/http/pprof on this address")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	d := &director{}
	for _, a := range strings.Split(*backends, ",") {
		d.ups = append(d.ups, proxy.NewUpstream(strings.TrimSpace(a), proxy.UpstreamOptions{MaxIdle: *maxIdle}))
	}
	for i := range d.ups {
		d.plans = append(d.plans, plan{d: d, i: uint64(i)})
	}
	if *pprof != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(*pprof, nil)) }()
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	srv := proxy.NewServer(proxy.Config{Director: d, Logger: log})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	defer func() {
		for _, u := range d.ups {
			u.Close()
		}
	}()
	if err := srv.Serve(l); err != nil && err != proxy.ErrServerClosed {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
	for _, u := range d.ups {
		st := u.Stats()
		log.Info("upstream", "addr", u.Addr(), "requests", st.Requests, "dials", st.Dials, "open", st.Open, "idle", st.Idle)
	}
}
