package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
)

func newACLCmd(g *globals) *cobra.Command {
	policy := groupCmd("policy", "Create, list, show and remove ACL policies",
		`A policy is a named list of rules; each rule grants read, write or deny on the
names of one resource (kv, service, node, job, acl, operator) that start with
a prefix ("" = all). The longest matching prefix wins; at equal prefixes deny
beats write beats read.

A policy file (YAML or JSON):

  name: app-config
  description: read the app's settings, write its state
  rules:
    - {resource: kv, prefix: app/config/, access: read}
    - {resource: kv, prefix: app/state/, access: write}

Examples:
  herd acl policy apply -f app-config.yaml
  herd acl policy ls
  herd acl policy show app-config
  herd acl policy rm app-config`,
		newPolicyApplyCmd(g), newPolicyLsCmd(g), newPolicyShowCmd(g), newPolicyRmCmd(g))
	token := groupCmd("token", "Create, list and revoke API tokens",
		`API tokens carry policies (or are management tokens, allowed everything).
The cluster keeps only a hash of each secret: the secret is printed once, when
the token is created. Revoking a token takes effect on every agent within a
second.

Examples:
  herd acl token create --policy app-config --description "app on web1"
  herd acl token create --policy app-config --ttl 720h
  herd acl token ls
  herd acl token self
  herd acl token rm 1f0e2d3c4b5a6978`,
		newACLTokenCreateCmd(g), newACLTokenLsCmd(g), newACLTokenSelfCmd(g), newACLTokenRmCmd(g))
	return groupCmd("acl", "Bootstrap ACLs and manage policies and API tokens",
		`Every API request needs a token (Authorization: Bearer, or X-Consul-Token); a
request without one may only read /v1/status/health. "herd acl bootstrap"
makes the first management token of a new cluster, once.

Examples:
  herd acl bootstrap
  herd acl policy apply -f policy.yaml
  herd acl token create --policy app-config`,
		newACLBootstrapCmd(g), policy, token)
}

func newACLBootstrapCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "Make the first management token of a new cluster (once)",
		Long: `Make the cluster's first management token and print its secret. It works
once per cluster: keep the secret safe (export HERD_TOKEN=... to use it) and
make narrower tokens for everyday use.

Example:
  herd acl bootstrap`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.ACLBootstrap(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "AccessorID: %s\nSecretID:   %s\n", t.AccessorID, t.SecretID)
			fmt.Fprintf(w, "This is a management token, shown once. Use it with:\n  export HERD_TOKEN=%s\n", t.SecretID)
			return nil
		},
	}
}

func newPolicyApplyCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or replace a policy from a YAML or JSON file",
		Long: `Create or replace a policy from a file (YAML or JSON; "-" reads stdin). Unknown
fields are errors, and a bad rule is named with its position.

Example:
  herd acl policy apply -f app-config.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("-f FILE is required")
			}
			data, err := readInput(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var p api.ACLPolicy
			if err := config.UnmarshalStrict(data, &p); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if p.Name == "" {
				return fmt.Errorf("%s: name: required", file)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			idx, err := c.ACLPolicySet(cmd.Context(), &p)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %q applied (index %d)\n", p.Name, idx)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `policy file, or "-" for stdin`)
	return cmd
}

func newPolicyLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the policies",
		Long: `List the policies with how many rules each has.

Examples:
  herd acl policy ls
  herd acl policy ls -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.ACLPolicies(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				if ps == nil {
					ps = []*api.ACLPolicy{}
				}
				return printOut(w, *out, ps)
			}
			t := newTable(w, "NAME", "RULES", "DESCRIPTION")
			for _, p := range ps {
				t.row(p.Name, fmt.Sprint(len(p.Rules)), p.Description)
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newPolicyShowCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a policy's rules",
		Long: `Show a policy's rules.

Examples:
  herd acl policy show app-config
  herd acl policy show app-config -o json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.ACLPolicy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("no policy named %q", args[0])
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				return printOut(w, *out, p)
			}
			fmt.Fprintf(w, "Name:        %s\nDescription: %s\n", p.Name, p.Description)
			t := newTable(w, "RESOURCE", "PREFIX", "ACCESS")
			for _, r := range p.Rules {
				prefix := r.Prefix
				if prefix == "" {
					prefix = `""`
				}
				t.row(r.Resource, prefix, r.Access)
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newPolicyRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a policy (tokens that name it lose what it granted)",
		Long: `Remove a policy. Tokens that name it keep their other policies.

Example:
  herd acl policy rm app-config`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.ACLPolicyDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %q removed\n", args[0])
			return nil
		},
	}
}

func newACLTokenCreateCmd(g *globals) *cobra.Command {
	var (
		policies   []string
		desc       string
		ttl        time.Duration
		management bool
	)
	cmd := &cobra.Command{
		Use:   "create --policy NAME...",
		Short: "Make an API token; its secret is printed once",
		Long: `Make an API token carrying the given policies (or --management, allowed
everything). The secret is printed once; the cluster keeps only its hash.

Examples:
  herd acl token create --policy app-config --description "app on web1"
  herd acl token create --policy kv-read --ttl 24h
  herd acl token create --management --description "second admin"`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(policies) == 0 && !management {
				return usagef("give --policy NAME (repeatable) or --management")
			}
			if ttl < 0 {
				return usagef("--ttl must be positive")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := &api.ACLTokenRequest{Description: desc, Policies: policies, Management: management}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			t, err := c.ACLTokenCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "AccessorID: %s\nSecretID:   %s\n", t.AccessorID, t.SecretID)
			if !t.ExpiresAt.IsZero() {
				fmt.Fprintf(w, "Expires:    %s\n", t.ExpiresAt.Format(time.RFC3339))
			}
			fmt.Fprintln(w, "The secret is shown once.")
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&policies, "policy", nil, "policy the token carries (repeatable)")
	cmd.Flags().StringVar(&desc, "description", "", "what the token is for")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default: no expiry)")
	cmd.Flags().BoolVar(&management, "management", false, "a management token: allowed everything")
	return cmd
}

func printACLTokens(cmd *cobra.Command, out *outputFormat, toks []*api.ACLToken) error {
	w := cmd.OutOrStdout()
	if *out != outputTable {
		if toks == nil {
			toks = []*api.ACLToken{}
		}
		return printOut(w, *out, toks)
	}
	t := newTable(w, "ACCESSOR", "POLICIES", "EXPIRES", "DESCRIPTION")
	for _, tok := range toks {
		pol := strings.Join(tok.Policies, ",")
		if tok.Management {
			pol = "(management)"
		}
		exp := ""
		if !tok.ExpiresAt.IsZero() {
			exp = tok.ExpiresAt.Format(time.RFC3339)
		}
		t.row(tok.AccessorID, pol, exp, tok.Description)
	}
	return t.flush()
}

func newACLTokenLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the API tokens (never their secrets)",
		Long: `List the API tokens by accessor ID, with their policies and expiry.

Examples:
  herd acl token ls
  herd acl token ls -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			toks, err := c.ACLTokens(cmd.Context())
			if err != nil {
				return err
			}
			return printACLTokens(cmd, out, toks)
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newACLTokenSelfCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "self",
		Short: "Show the token this CLI sends",
		Long: `Show the token this CLI sends (--token or $HERD_TOKEN): its accessor ID,
policies and expiry.

Example:
  herd acl token self`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.ACLTokenSelf(cmd.Context())
			if err != nil {
				return err
			}
			t.PolicyDetails = nil
			return printACLTokens(cmd, out, []*api.ACLToken{t})
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newACLTokenRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ACCESSOR",
		Short: "Revoke an API token",
		Long: `Revoke an API token by its accessor ID; every agent stops accepting it within
a second.

Example:
  herd acl token rm 1f0e2d3c4b5a6978`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.ACLTokenDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
}

func newTokenCmd(g *globals) *cobra.Command {
	return groupCmd("token", "Create, list and revoke join tokens for new nodes",
		`A join token lets a new node join: "herd agent --join ADDR --token T" sends it
once to the agent at ADDR (an API address) to obtain the node's certificate
and the gossip key. The token carries the hash of the cluster CA's public key,
so the new node checks it talks to the right cluster before it sends anything.
Tokens are for clients (default) or servers, and expire (default 24h).

Examples:
  herd token create
  herd token create --role server --ttl 1h
  herd token ls
  herd token revoke 0123456789abcdef`,
		newJoinTokenCreateCmd(g), newJoinTokenLsCmd(g), newJoinTokenRevokeCmd(g))
}

func newJoinTokenCreateCmd(g *globals) *cobra.Command {
	var (
		role string
		desc string
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a join token; it is printed once",
		Long: `Make a join token for client (default) or server nodes. It is printed once.

Examples:
  herd token create
  herd token create --role server --ttl 1h --description "rack 3 servers"`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role != "client" && role != "server" {
				return usagef("--role must be client or server, not %q", role)
			}
			if ttl <= 0 {
				return usagef("--ttl must be positive")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.JoinTokenCreate(cmd.Context(), &api.JoinTokenRequest{Role: role, Description: desc, TTL: ttl.String()})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s for %s nodes, expires %s; join with: herd agent --join <API address> --token <token>\n",
				t.ID, t.Role, t.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "client", "client or server")
	cmd.Flags().StringVar(&desc, "description", "", "what the token is for")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime (at most 720h)")
	return cmd
}

func newJoinTokenLsCmd(g *globals) *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the join tokens (never their secrets)",
		Long: `List the join tokens by ID with their role and expiry; expired ones say so.

Examples:
  herd token ls
  herd token ls -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			toks, err := c.JoinTokens(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if *out != outputTable {
				if toks == nil {
					toks = []*api.JoinToken{}
				}
				return printOut(w, *out, toks)
			}
			sort.Slice(toks, func(i, j int) bool { return toks[i].CreateTime.Before(toks[j].CreateTime) })
			t := newTable(w, "ID", "ROLE", "EXPIRES", "DESCRIPTION")
			for _, tok := range toks {
				exp := tok.ExpiresAt.Format(time.RFC3339)
				if !time.Now().Before(tok.ExpiresAt) {
					exp += " (expired)"
				}
				t.row(tok.ID, tok.Role, exp, tok.Description)
			}
			return t.flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newJoinTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token",
		Long: `Revoke a join token by its ID: no node can join with it afterwards. Nodes
that joined with it keep their certificates.

Example:
  herd token revoke 0123456789abcdef`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.JoinTokenDelete(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "join token %s revoked\n", args[0])
			return nil
		},
	}
}
