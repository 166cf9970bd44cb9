package main

import (
	"net"
	"testing"
)

// TestTLSServerName: an agent reached at an address its certificate does
// not hold, as through a port Docker publishes on 127.0.0.1, is checked
// against its node name with --tls-server-name or $HERD_TLS_SERVER_NAME.
func TestTLSServerName(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	_, port, err := net.SplitHostPort(n.Agent().APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	// The certificate holds 127.0.0.1 and the node name, not "localhost".
	addr := "https://localhost:" + port
	creds := []string{"--address", addr, "--ca-cert", c.CACert, "--token", c.Token}

	r := herd(t, append(creds, "members")...)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "certificate")

	r = herd(t, append(creds, "--tls-server-name", n.Name, "members")...)
	wantCode(t, r, 0)
	wantContains(t, "stdout", r.stdout, n.Name)

	t.Setenv("HERD_TLS_SERVER_NAME", n.Name)
	r = herd(t, append(creds, "members")...)
	wantCode(t, r, 0)

	r = herd(t, append(creds, "--tls-server-name", "someone-else", "members")...)
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "certificate")
}
