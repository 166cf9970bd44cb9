// Command herd is the herd agent and its command-line client in one binary.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/internal/vip"
)

// usageError marks errors in how a command was called; they exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	vip.RunFenceIfChild() // an agent's VIP fence watchdog is this binary
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code: 0 on success, 1 when the
// agent or the operation failed, 2 on a usage error (with usage printed).
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetOut(stdout)
	root.SetErr(stderr)
	return execute(root, args)
}

// execute runs root with args and maps its error to an exit code, writing
// the error (and usage) to root's error stream.
func execute(root *cobra.Command, args []string) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	stderr := root.ErrOrStderr()
	var ue usageError
	if errors.As(err, &ue) || isFlagError(err) {
		fmt.Fprintf(stderr, "Error: %v\n\n%s", err, cmd.UsageString())
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return 1
}

// exitError carries a command's own exit code (herd lock returns the
// child's).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "herd",
		Short: "herd: a self-healing server cluster in one binary",
		Long: `herd turns a few machines into one cluster: gossip membership, a Raft-replicated
control plane and key-value store with watches, sessions and locks, and a
load-balancing gateway on every agent that routes to the services you apply.

Start a one-node cluster on this machine:   herd agent --dev
Then talk to it from another terminal:      herd members; herd kv put greeting hello
Put a service behind its gateway (:7780):    herd apply -f web.yaml; herd service show web
Let herd run a service's replicas:           herd apply -f api.yaml; herd ps; herd logs api

Commands other than "agent" talk to an agent's HTTP API at --address, or
$HERD_ADDR, or ` + "http://127.0.0.1:7700" + `.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newAgentCmd())
	addClientCommands(root)
	return root
}

// isFlagError recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which are usage errors. It matches only
// at the start of the message, where cobra puts them, so that a server
// error mentioning such words is not mistaken for one.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
