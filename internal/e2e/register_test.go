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
)

// registerClients runs n clients doing reads (linearizable, the default)
// and writes of unique values on a few keys through every agent until
// stop, and returns the history as porcupine operations. A write whose
// outcome is unknown (a timeout, a lost connection) may have happened at
// any time after its call: it returns "at the end of time". A failed read
// changed nothing and is left out.
func registerClients(ctx context.Context, c *cluster, n int) (stop func() []porcupine.Operation) {
	var mu sync.Mutex
	var ops []porcupine.Operation
	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(ctx)
	keys := []string{"reg/a", "reg/b", "reg/c"}
	for id := range n {
		wg.Go(func() {
			cl := c.client(nodes[id%len(nodes)])
			defer cl.Close()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			for seq := 0; rctx.Err() == nil; seq++ {
				in := regInput{key: keys[rng.IntN(len(keys))], write: rng.IntN(2) == 0}
				if in.write {
					in.value = fmt.Sprintf("c%d-%d", id, seq)
				}
				call := time.Now().UnixNano()
				octx, ocancel := context.WithTimeout(rctx, time.Second)
				var out regOutput
				var err error
				if in.write {
					var ok bool
					ok, _, err = cl.KVPut(octx, in.key, []byte(in.value), nil)
					if err == nil && !ok {
						err = fmt.Errorf("put not applied")
					}
				} else {
					kv, _, gerr := cl.KVGet(octx, in.key, nil)
					err = gerr
					if kv != nil {
						out.value = string(kv.Value)
					}
				}
				ocancel()
				ret := time.Now().UnixNano()
				switch {
				case err == nil:
				case in.write:
					ret = 1 << 62 // unknown outcome: it may take effect any time
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
	t.Errorf("%s: the KV history is NOT linearizable; porcupine's visualization: %s", name, path)
	return "NO"
}
