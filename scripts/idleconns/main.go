// Command idleconns opens many keep-alive HTTP/1.1 connections to an
// address, sends one GET on each, keeps them all open and idle, and
// reports the resident memory of a process (the proxy under test). It is
// a benchmark helper for scripts/bench-gateway.sh, not part of herd.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7780", "address to connect to")
	n := flag.Int("n", 10000, "connections")
	hold := flag.Duration("hold", 3*time.Second, "how long to keep them idle before measuring")
	pid := flag.Int("pid", 0, "process whose RSS to report")
	flag.Parse()

	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	failed := 0
	start := time.Now()
	for i := 0; i < *n; i++ {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			failed++
			continue
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			failed++
			c.Close()
			continue
		}
		resp.Body.Close()
		conns = append(conns, c)
	}
	opened := time.Since(start)
	time.Sleep(*hold)
	rss := "n/a"
	if *pid > 0 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
		if err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(l, "VmRSS:") {
					rss = strings.Fields(l)[1]
				}
			}
		}
	}
	fmt.Printf("opened %d idle keep-alive connections in %s (%d failed)\n", len(conns), opened.Round(time.Millisecond), failed)
	fmt.Printf("RESULT test=idle conns=%d failed=%d rss_kib=%s\n", len(conns), failed, rss)
}
