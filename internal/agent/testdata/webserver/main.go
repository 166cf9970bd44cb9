// Command webserver is the replica the agent's workload tests run with the
// exec and docker drivers: an HTTP server on $LISTEN_HOST:$PORT (default
// 127.0.0.1) that names its replica.
//
//	GET /health  200 "ok" (500 when $FAIL_HEALTH is set)
//	GET /        "<replica id> <$VERSION>"
//	GET /exit    exits with code 3
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	id, version := os.Getenv("HERD_REPLICA_ID"), os.Getenv("VERSION")
	if os.Getenv("EXIT_AT_ONCE") != "" {
		fmt.Fprintln(os.Stderr, "exiting at once as asked")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("FAIL_HEALTH") != "" {
			http.Error(w, "unhealthy on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) { os.Exit(3) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", id, version) })
	host := os.Getenv("LISTEN_HOST") // 0.0.0.0 in a container
	if host == "" {
		host = "127.0.0.1"
	}
	addr := host + ":" + os.Getenv("PORT")
	fmt.Printf("replica %s version %s listening on %s\n", id, version, addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
