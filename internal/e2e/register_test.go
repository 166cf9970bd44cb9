//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/herd-cluster/herd/api"
)

// registerClients runs n clients doing reads (linearizable, the default),
// writes of unique values and check-and-sets (on the modify index of the
// client's last read of the key) on a few keys through every agent until
// stop, and returns the history as porcupine operations. A write or CAS
// whose outcome is unknown (a timeout, a lost connection) may take effect
// at any time after its call: it returns "at the end of time". A failed
// read changed nothing and is left out.
func registerClients(ctx context.Context, c *cluster, n int) (stop func() []porcupine.Operation) {
	var mu sync.Mutex
	var ops []porcupine.Operation
	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(ctx)
	keys := []string{"reg/a", "reg/b", "reg/c"}
	for id := range n {
		wg.Go(func() {
			target := nodes[id%len(nodes)]
			cl := c.client(target)
			defer cl.Close()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			type seen struct {
				value string
				index uint64
			}
			last := map[string]seen{} // the last value read of each key
			for seq := 0; rctx.Err() == nil; seq++ {
				in := regInput{key: keys[rng.IntN(len(keys))], kind: opRead, node: target.name}
				switch r := rng.IntN(10); {
				case r < 4:
					in.kind, in.value = opWrite, fmt.Sprintf("c%d-%d", id, seq)
				case r < 6:
					in.kind, in.value, in.expect = opCAS, fmt.Sprintf("c%d-%d", id, seq), last[in.key].value
				}
				call := time.Now().UnixNano()
				octx, ocancel := context.WithTimeout(rctx, time.Second)
				var out regOutput
				var meta *api.Meta
				var err error
				switch in.kind {
				case opWrite, opCAS:
					var o *api.WriteOptions
					if in.kind == opCAS {
						idx := last[in.key].index
						o = &api.WriteOptions{CAS: &idx}
					}
					out.ok, meta, err = cl.KVPut(octx, in.key, []byte(in.value), o)
					if err == nil && !out.ok && in.kind == opWrite {
						err = fmt.Errorf("put not applied")
					}
				default:
					var kv *api.KVPair
					kv, meta, err = cl.KVGet(octx, in.key, nil)
					if err == nil {
						s := seen{}
						if kv != nil {
							out.value = string(kv.Value)
							s = seen{value: out.value, index: kv.ModifyIndex}
						}
						last[in.key] = s
					}
				}
				ocancel()
				ret := time.Now().UnixNano()
				if meta != nil {
					out.index = meta.Index
				}
				switch {
				case err == nil:
				case in.kind != opRead:
					ret = 1 << 62 // unknown outcome: it may take effect any time
					out = regOutput{unknown: true}
				default:
					time.Sleep(20 * time.Millisecond)
					continue // a failed read: no effect, no information
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return func() []porcupine.Operation {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return ops
	}
}

// checkLinearizable checks a register history with porcupine, saving its
// HTML visualization when it is not linearizable; it returns "yes", "NO"
// or "unknown" (the checker ran out of time).
func checkLinearizable(t *testing.T, name string, ops []porcupine.Operation) string {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		return "yes"
	case porcupine.Unknown:
		t.Errorf("%s: the linearizability check of %d operations timed out", name, len(ops))
		return "unknown"
	}
	dir := os.Getenv("HERD_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "e2e-"+name+"-porcupine.html")
	if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
		t.Logf("saving the visualization: %v", err)
	}
	t.Errorf("%s: the KV history is NOT linearizable; porcupine's visualization: %s\n%s", name, path, explain(ops))
	return "NO"
}
