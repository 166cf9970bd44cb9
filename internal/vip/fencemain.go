package vip

import (
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/herd-cluster/herd/internal/netif"
)

// canFence is set once RunFenceIfChild ran in this process without being
// a watchdog: this binary starts as one when asked to. Other binaries (a
// test binary that starts agents, say) must not be started as one: they
// would run whatever their main does instead.
var canFence atomic.Bool

// RunFenceIfChild makes this process the fence watchdog, and exits, when
// it was started as one (FenceEnv set): a binary that may start the
// watchdog calls it first thing in main (and a test binary in TestMain).
// The watchdog ignores the signals a terminal or a service manager sends
// to the whole group: it ends when the agent's end of its stdin closes.
func RunFenceIfChild() {
	if os.Getenv(FenceEnv) != "1" {
		canFence.Store(true)
		return
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "vip-fence", "pid", os.Getpid())
	var net Net = netif.Host{}
	if p := os.Getenv("HERD_VIP_FENCE_NETNS"); p != "" {
		ns, err := netif.OpenNamespace(p)
		if err != nil {
			log.Error("vip fence: cannot start", "err", err)
			os.Exit(1)
		}
		net = ns
	}
	FenceMain(os.Stdin, net, log)
	os.Exit(0)
}
