// Command echo is the test server baked into the docker driver's test
// image: it listens on $PORT and answers
//
//	GET /health      200 "ok"
//	GET /            its hostname
//	GET /env?name=X  the value of $X
//	GET /uid         its user ID
//	GET /args        its arguments, one a line
//	GET /exit        exits with code 3
//
// It prints a line to stdout and one to stderr when it starts, exits 0 on
// SIGTERM, 4 on SIGUSR1 and ignores SIGHUP (to test the kill timeout).
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	signal.Ignore(syscall.SIGHUP)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	go func() {
		s := <-sigs
		fmt.Println("echo: got", s)
		if s == syscall.SIGUSR1 {
			os.Exit(4)
		}
		os.Exit(0)
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprint(w, h)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("GET /uid", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, os.Getuid()) })
	mux.HandleFunc("GET /args", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, strings.Join(os.Args[1:], "\n"))
	})
	mux.HandleFunc("GET /exit", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "bye")
		go func() {
			time.Sleep(50 * time.Millisecond) // let the answer go out
			os.Exit(3)
		}()
	})

	port := os.Getenv("PORT")
	if _, err := strconv.Atoi(port); err != nil {
		fmt.Fprintln(os.Stderr, "echo: $PORT is not a port:", port)
		os.Exit(2)
	}
	fmt.Println("echo: listening on :" + port)
	fmt.Fprintln(os.Stderr, "echo: args", os.Args[1:])
	if err := http.ListenAndServe(":"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}
