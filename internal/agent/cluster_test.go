package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/testcluster"
)

func TestThreeServersReplicate(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Servers: 3})
	ctx := testcluster.Ctx(t, 30*time.Second)
	for i, n := range c.Nodes {
		key := fmt.Sprintf("from/%s", n.Name)
		if ok, _, err := n.Client(t).KVPut(ctx, key, []byte(fmt.Sprint(i)), nil); err != nil || !ok {
			t.Fatalf("put on %s: ok=%v err=%v", n.Name, ok, err)
		}
	}
	for _, n := range c.Nodes {
		for i, m := range c.Nodes {
			kv, _, err := n.Client(t).KVGet(ctx, "from/"+m.Name, nil)
			if err != nil || kv == nil || string(kv.Value) != fmt.Sprint(i) {
				t.Fatalf("get from/%s on %s: %+v, %v", m.Name, n.Name, kv, err)
			}
		}
	}
	cfg, err := c.Nodes[0].Client(t).RaftConfiguration(ctx)
	if err != nil || len(cfg.Servers) != 3 {
		t.Fatalf("raft configuration: %+v, %v", cfg, err)
	}
}
