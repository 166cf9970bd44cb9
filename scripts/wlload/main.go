// Command wlload is the load generator of scripts/bench-workload.sh: a few
// HTTP GET loops against one URL (a herd gateway in front of the replicas
// of a service), counting every answer and naming the replica that gave
// it. It is a benchmark helper, not part of herd.
//
// Each loop sends GET -url, waits for the answer, reads the body and
// starts over (paced when -rate is set). A 200 answer counts as ok and its
// body's first word names the replica (the test web server answers
// "<replica id> <version>"); anything else (another status, a transport
// error, a timeout) counts as failed. Requests still in flight when the
// run stops are not counted.
//
// It runs for -duration, or until SIGTERM/SIGINT, or until -stop-file
// exists. Timestamps are wall-clock Unix milliseconds, so that a script on
// the same machine can compare them with its own clock. The event log
// (-out, default stdout) has one event a line:
//
//	START <ms> url=<url> clients=<n> rate=<r>
//	FIRST <ms> <replica>            first ok answer from this replica
//	FAIL  <ms> <what> <latency_ms> <body>  a failed request (what: HTTP
//	                                status or timeout|refused|reset|eof|err;
//	                                body: the answer's first 100 bytes or the
//	                                error, blanks as '_')
//	TICK  <ms> <ok> <failed>        requests that ended in the -tick
//	                                interval ending at <ms>
//	RESULT key=value ...            the totals, also on stdout
//
// FAIL lines stop after -max-fail-lines (the counters go on).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	target := flag.String("url", "http://127.0.0.1:7780/", "URL to GET")
	clients := flag.Int("c", 16, "concurrent GET loops")
	duration := flag.Duration("duration", 0, "how long to run (0: until SIGTERM/SIGINT or -stop-file)")
	rate := flag.Float64("rate", 0, "total requests per second over all loops (0: as fast as answers come)")
	timeout := flag.Duration("timeout", 2*time.Second, "timeout of one request, body included")
	tick := flag.Duration("tick", 100*time.Millisecond, "interval of the TICK lines")
	stopFile := flag.String("stop-file", "", "stop when this file exists")
	out := flag.String("out", "", "event log file (default stdout)")
	maxFail := flag.Int("max-fail-lines", 100000, "most FAIL lines written")
	flag.Parse()
	if *clients < 1 || *tick <= 0 {
		fmt.Fprintln(os.Stderr, "wlload: -c must be >= 1 and -tick > 0")
		os.Exit(2)
	}

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wlload:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	ev := &events{w: bufio.NewWriterSize(w, 64<<10), seen: map[string]int64{}, maxFail: *maxFail}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *stopFile != "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if _, err := os.Stat(*stopFile); err == nil {
					cancel()
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: *timeout}).DialContext,
		MaxIdleConns:        *clients,
		MaxIdleConnsPerHost: *clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	hc := &http.Client{Transport: tr, Timeout: *timeout}

	start := time.Now()
	ev.printf("START %d url=%s clients=%d rate=%g\n", start.UnixMilli(), *target, *clients, *rate)
	ev.flush()

	// TICK lines and flushing.
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(*tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				ok, failed := ev.tickOK.Swap(0), ev.tickFail.Swap(0)
				ev.printf("TICK %d %d %d\n", now.UnixMilli(), ok, failed)
				ev.flush()
			}
		}
	}()

	var wg sync.WaitGroup
	lats := make([][]int32, *clients) // µs of ok requests, per loop
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var interval time.Duration
			next := time.Now()
			if *rate > 0 {
				interval = time.Duration(float64(*clients) / *rate * float64(time.Second))
				next = next.Add(interval * time.Duration(i) / time.Duration(*clients)) // stagger
			}
			for ctx.Err() == nil {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
					next = next.Add(interval)
					if now := time.Now(); now.Sub(next) > interval {
						next = now // fell behind: no burst to catch up
					}
				}
				if lat, ok := ev.one(ctx, hc, *target); ok {
					lats[i] = append(lats[i], int32(min(lat.Microseconds(), 1<<31-1)))
				}
			}
		}()
	}
	wg.Wait()
	<-tickDone
	elapsed := time.Since(start)
	tr.CloseIdleConnections()

	var all []int32
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) string {
		if len(all) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", float64(all[int(p*float64(len(all)-1))])/1000)
	}
	ev.mu.Lock()
	ids := make([]string, 0, len(ev.seen))
	for id := range ev.seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var per []string
	for _, id := range ids {
		per = append(per, fmt.Sprintf("%s:%d", id, ev.seen[id]))
	}
	ok, failed := ev.ok, ev.failed
	kinds := make([]string, 0, len(ev.kinds))
	for k, n := range ev.kinds {
		kinds = append(kinds, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(kinds)
	ev.mu.Unlock()
	total := ok + failed
	ratio := 0.0
	if total > 0 {
		ratio = float64(failed) / float64(total)
	}
	res := fmt.Sprintf("RESULT total=%d ok=%d failed=%d fail_ratio=%.6f rps=%.0f p50_ms=%s p99_ms=%s max_ms=%s duration_s=%.1f end_ms=%d fails=%s replicas=%s\n",
		total, ok, failed, ratio, float64(total)/elapsed.Seconds(), pct(0.5), pct(0.99), pct(1),
		elapsed.Seconds(), time.Now().UnixMilli(), orDash(strings.Join(kinds, ",")), orDash(strings.Join(per, ",")))
	ev.printf("%s", res)
	ev.flush()
	if *out != "" {
		fmt.Print(res)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// events counts outcomes and writes the event log.
type events struct {
	tickOK, tickFail atomic.Int64

	mu      sync.Mutex
	w       *bufio.Writer
	seen    map[string]int64 // ok answers per replica
	kinds   map[string]int64 // failures per kind
	ok      int64
	failed  int64
	fails   int
	maxFail int
}

func (e *events) printf(format string, args ...any) {
	e.mu.Lock()
	fmt.Fprintf(e.w, format, args...)
	e.mu.Unlock()
}

func (e *events) flush() {
	e.mu.Lock()
	_ = e.w.Flush()
	e.mu.Unlock()
}

// one sends one GET and records its outcome; it returns the latency and
// whether it was ok. A request cut short by the end of the run is not
// recorded.
func (e *events) one(ctx context.Context, hc *http.Client, url string) (time.Duration, bool) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wlload:", err)
		os.Exit(2)
	}
	var body []byte
	status := 0
	resp, err := hc.Do(req)
	if err == nil {
		status = resp.StatusCode
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}
	end := time.Now()
	lat := end.Sub(t0)
	if ctx.Err() != nil {
		return lat, false // the run ended under it
	}
	what, detail := "", ""
	switch {
	case err != nil:
		what, detail = errKind(err), err.Error()
	case status != http.StatusOK:
		what, detail = fmt.Sprint(status), string(body)
	}
	if what != "" {
		e.tickFail.Add(1)
		e.mu.Lock()
		e.failed++
		if e.kinds == nil {
			e.kinds = map[string]int64{}
		}
		e.kinds[what]++
		if e.fails < e.maxFail {
			e.fails++
			fmt.Fprintf(e.w, "FAIL %d %s %d %s\n", end.UnixMilli(), what, lat.Milliseconds(), oneWord(detail, 100))
		}
		e.mu.Unlock()
		return lat, false
	}
	id := "?"
	if f := strings.Fields(string(body)); len(f) > 0 {
		id = f[0]
	}
	e.tickOK.Add(1)
	e.mu.Lock()
	e.ok++
	if _, ok := e.seen[id]; !ok {
		fmt.Fprintf(e.w, "FIRST %d %s\n", end.UnixMilli(), id)
		_ = e.w.Flush() // the script watches for new replicas
	}
	e.seen[id]++
	e.mu.Unlock()
	return lat, true
}

// oneWord shortens s to n bytes and makes it one word ("-" when empty).
func oneWord(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	s = strings.Join(strings.Fields(s), "_")
	if s == "" {
		return "-"
	}
	return s
}

// errKind names a transport error briefly.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "err"
}
