package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
)

// globals holds the flags every client command shares.
type globals struct {
	address    string
	token      string
	caCert     string
	serverName string
}

// client returns an API client for --address with --token, --ca-cert and
// --tls-server-name (their environment variables when not given). A
// malformed address is a usage error.
func (g *globals) client() (*api.Client, error) {
	c, err := api.NewClientConfig(api.Config{Address: g.address, Token: g.token, CACert: g.caCert, TLSServerName: g.serverName})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// defaultAddress is $HERD_ADDR, else api.DefaultAddress.
func defaultAddress() string {
	if a := os.Getenv("HERD_ADDR"); a != "" {
		return a
	}
	return api.DefaultAddress
}

// usageArgs wraps a positional-argument validator so that its errors are
// usage errors (exit 2 with usage).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// groupCmd returns a command that only holds subcommands: called alone or
// with an unknown subcommand it is a usage error.
func groupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:                   use,
		Short:                 short,
		Long:                  long,
		Args:                  usageArgs(cobra.NoArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("%q needs a subcommand", cmd.CommandPath())
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// addClientCommands adds the commands that talk to an agent's API.
func addClientCommands(root *cobra.Command) {
	g := &globals{}
	root.PersistentFlags().StringVar(&g.address, "address", defaultAddress(),
		"HTTP API address of the agent to talk to ($HERD_ADDR sets the default); host:port means https when a CA is given")
	root.PersistentFlags().StringVar(&g.token, "token", "",
		"ACL token to send (default $HERD_TOKEN)")
	root.PersistentFlags().StringVar(&g.caCert, "ca-cert", "",
		"PEM file of the cluster CA that signed the agent's certificate (default $HERD_CACERT)")
	root.PersistentFlags().StringVar(&g.serverName, "tls-server-name", "",
		"check the agent's certificate for this name (its node name) instead of the address's host, e.g. for a port Docker publishes on 127.0.0.1 (default $HERD_TLS_SERVER_NAME)")
	root.AddCommand(
		newMembersCmd(g),
		newOperatorCmd(g),
		newKVCmd(g),
		newLockCmd(g),
		newStatusCmd(g),
		newApplyCmd(g),
		newServiceCmd(g),
		newBackendCmd(g),
		newPsCmd(g),
		newScaleCmd(g),
		newLogsCmd(g),
		newNodeCmd(g),
		newACLCmd(g),
		newTokenCmd(g),
		newVIPCmd(g),
		newEventsCmd(g),
		newMonitorCmd(g),
	)
}
