package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestCheckHolds: the lock check accepts holds whose tokens rise with
// time, counts overlapping holds with different tokens as fenced, and
// refuses a shared token, a falling token and a missing one.
func TestCheckHolds(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	h := func(client int, token uint64, called, acquired, until int) hold {
		return hold{client: client, token: token, called: at(called), acquired: at(acquired), until: at(until)}
	}
	good := checkHolds([]hold{h(0, 10, 0, 5, 20), h(1, 12, 1, 25, 40), h(0, 15, 30, 45, 60)})
	if len(good.violations) != 0 || good.overlapped != 0 {
		t.Fatalf("a clean history: %+v", good)
	}
	// Client 0's session ended while it still wrote; client 1 acquired
	// with a higher token: fenced, not a violation.
	stale := checkHolds([]hold{h(0, 10, 0, 5, 50), h(1, 12, 20, 25, 40)})
	if len(stale.violations) != 0 || stale.overlapped != 2 || !strings.HasPrefix(stale.String(), "ok") {
		t.Fatalf("an overlapping but fenced history: %+v", stale)
	}
	for name, holds := range map[string][]hold{
		"shared token":  {h(0, 10, 0, 5, 50), h(1, 10, 1, 25, 40)},
		"falling token": {h(0, 10, 0, 5, 20), h(1, 9, 21, 25, 40)},
		"no token":      {h(0, 0, 0, 5, 20)},
	} {
		if r := checkHolds(holds); len(r.violations) == 0 || !strings.HasPrefix(r.String(), "NO") {
			t.Errorf("%s: not caught: %+v", name, r)
		}
	}
}
