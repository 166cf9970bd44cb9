package e2e

import (
	"fmt"
	"sort"
	"time"
)

// hold is one lock acquisition as its client saw it: the acquire was
// called at called and returned the lock with token (the fencing token)
// at acquired; the client used the lock until until (its last protected
// write returned, or it started to release), writing writes times.
type hold struct {
	client           int
	token            uint64
	called, acquired time.Time
	until            time.Time
	writes           int
}

// lockReport is what the lock check found.
type lockReport struct {
	holds      int
	overlapped int // holds that overlapped another in time: fencing had to tell them apart
	violations []string
}

func (r lockReport) String() string {
	if len(r.violations) > 0 {
		return fmt.Sprintf("NO (%d violations)", len(r.violations))
	}
	return fmt.Sprintf("ok (%d holds, %d overlapped)", r.holds, r.overlapped)
}

// checkHolds checks lock acquisitions for the fencing guarantee: every
// acquisition has its own token; an acquisition that started after
// another had returned holds a higher token; so two holders whose use of
// the lock overlaps in time (a holder whose session ended without its
// knowing, say) always carry different tokens, the later one the higher,
// and a resource that refuses lower tokens keeps their writes apart.
func checkHolds(holds []hold) lockReport {
	r := lockReport{holds: len(holds)}
	sorted := append([]hold(nil), holds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].acquired.Before(sorted[j].acquired) })
	seen := map[uint64]int{}
	overlapped := map[int]bool{}
	for i, a := range sorted {
		if a.token == 0 {
			r.violations = append(r.violations, fmt.Sprintf("client %d got the lock at %s without a fencing token", a.client, a.acquired.Format(time.StampMilli)))
		} else if j, dup := seen[a.token]; dup {
			r.violations = append(r.violations, fmt.Sprintf("clients %d and %d both got fencing token %d", sorted[j].client, a.client, a.token))
		}
		seen[a.token] = i
		for k := i + 1; k < len(sorted); k++ {
			b := sorted[k]
			if a.acquired.Before(b.called) && b.token <= a.token {
				r.violations = append(r.violations, fmt.Sprintf("client %d acquired with token %d after client %d had acquired with token %d: tokens must rise",
					b.client, b.token, a.client, a.token))
			}
			if b.acquired.Before(a.until) {
				overlapped[i], overlapped[k] = true, true
			}
		}
	}
	r.overlapped = len(overlapped)
	return r
}
