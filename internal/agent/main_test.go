package agent_test

import (
	"testing"

	"github.com/herd-cluster/herd/internal/vip"

	"go.uber.org/goleak"
)

// Every test in this package stops its agents; none may leave a goroutine
// behind.
func TestMain(m *testing.M) {
	vip.RunFenceIfChild() // agents start this binary as their VIP fence watchdog
	// memberlist's Shutdown does not wait for a probe already in flight;
	// it ends by itself within one probe interval.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.Cleanup(func(int) { removeWebServer() }))
}
