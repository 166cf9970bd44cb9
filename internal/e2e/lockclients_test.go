//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/herd-cluster/herd/api"
)

// The lock the lock clients contend for, and the key they write under it.
const (
	lockKey  = "e2e-lock/leader"
	lockData = "e2e-lock/data"
)

// lockClients runs n clients (through c1, c2 and s2) that take the lock
// in turn, each time writing three times with its fencing token, and
// returns the acquisitions they made. A client whose acquire or release
// has an unknown outcome, or whose session renewal fails, drops that
// session: its lock is then released when the session's TTL runs out.
func lockClients(ctx context.Context, c *cluster, n int) (stop func() []hold) {
	var mu sync.Mutex
	var holds []hold
	var wg sync.WaitGroup
	lctx, cancel := context.WithCancel(ctx)
	via := []node{nodes[3], nodes[4], nodes[1]}
	for id := range n {
		wg.Go(func() {
			cl := c.client(via[id%len(via)])
			defer cl.Close()
			rng := rand.New(rand.NewPCG(uint64(id), 11))
			var sess string
			var lost chan struct{} // closed when the session's renewal fails
			var stopRenew context.CancelFunc = func() {}
			drop := func() {
				stopRenew()
				if sess != "" {
					dctx, dcancel := context.WithTimeout(lctx, time.Second)
					_ = cl.SessionDestroy(dctx, sess)
					dcancel()
				}
				sess = ""
			}
			defer drop()
			pause := func(d time.Duration) {
				select {
				case <-lctx.Done():
				case <-time.After(d):
				}
			}
			for lctx.Err() == nil {
				if sess != "" {
					select {
					case <-lost:
						drop()
					default:
					}
				}
				if sess == "" {
					octx, ocancel := context.WithTimeout(lctx, time.Second)
					id, err := cl.SessionCreate(octx, &api.SessionEntry{Name: "e2e-lock", TTL: "10s", LockDelay: time.Second, Behavior: "release"})
					ocancel()
					if err != nil {
						pause(100 * time.Millisecond)
						continue
					}
					sess, lost = id, make(chan struct{})
					rctx, cancelRenew := context.WithCancel(lctx)
					stopRenew = cancelRenew
					wg.Go(func() { renew(rctx, cl, id, lost) })
				}
				h := hold{client: id, called: time.Now()}
				octx, ocancel := context.WithTimeout(lctx, time.Second)
				ok, token, err := cl.KVAcquire(octx, lockKey, sess, []byte(fmt.Sprint(id)))
				ocancel()
				if err != nil {
					drop() // it may hold the lock: let the session go
					pause(100 * time.Millisecond)
					continue
				}
				if !ok {
					pause(time.Duration(20+rng.IntN(80)) * time.Millisecond)
					continue
				}
				h.token, h.acquired, h.until = token, time.Now(), time.Now()
				for range 3 {
					select {
					case <-lost:
					default:
						octx, ocancel := context.WithTimeout(lctx, time.Second)
						_, _, err := cl.KVPut(octx, lockData, []byte(fmt.Sprintf("%d:%d", token, id)), nil)
						ocancel()
						h.until = time.Now()
						if err == nil {
							h.writes++
						}
					}
				}
				mu.Lock()
				holds = append(holds, h)
				mu.Unlock()
				octx, ocancel = context.WithTimeout(lctx, time.Second)
				released, err := cl.KVRelease(octx, lockKey, sess)
				ocancel()
				if err != nil || !released {
					drop()
				}
				pause(time.Duration(20+rng.IntN(80)) * time.Millisecond)
			}
		})
	}
	return func() []hold {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return holds
	}
}

// renew keeps session id alive every 2 s until ctx ends, closing lost
// when a renewal fails for longer than the TTL allows (the session may be
// gone).
func renew(ctx context.Context, cl *api.Client, id string, lost chan struct{}) {
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		octx, cancel := context.WithTimeout(ctx, time.Second)
		err := cl.SessionRenew(octx, id)
		cancel()
		if err == nil {
			last = time.Now()
			continue
		}
		if api.IsNotFound(err) || time.Since(last) > 5*time.Second {
			close(lost)
			return
		}
	}
}
