package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// validConfig returns a configuration that passes Validate.
func validConfig() Config {
	c := Default()
	c.NodeName = "node-1"
	c.DataDir = "/var/lib/herd"
	c.BindAddr = "0.0.0.0"
	return c
}

// fieldErrors returns the FieldErrors joined in err.
func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*FieldError
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %q (%T) is not a *FieldError", e, e)
		}
		out = append(out, fe)
	}
	return out
}

func TestValidateValid(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	full := fullConfig()
	if err := full.Validate(); err != nil {
		t.Fatalf("Validate(full): %v", err)
	}
	eph := validConfig()
	eph.Ephemeral = true
	eph.Ports = Ports{}
	if err := eph.Validate(); err != nil {
		t.Fatalf("Validate with Ephemeral and zero ports: %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string
		want   string // substring of the message
	}{
		{"bad node name", func(c *Config) { c.NodeName = "-bad name" }, "node_name", "not a valid node name"},
		{"missing data dir", func(c *Config) { c.DataDir = "" }, "data_dir", "required"},
		{"bind addr not an IP", func(c *Config) { c.BindAddr = "localhost" }, "bind_addr", `"localhost" is not an IP address`},
		{"empty bind addr", func(c *Config) { c.BindAddr = "" }, "bind_addr", "not an IP address"},
		{"unspecified advertise addr", func(c *Config) { c.AdvertiseAddr = "0.0.0.0" }, "advertise_addr", "not a usable IP address"},
		{"port 0 without Ephemeral", func(c *Config) { c.Ports.HTTP = 0 }, "ports.http", "0 is not a valid port"},
		{"port too large", func(c *Config) { c.Ports.Gossip = 70000 }, "ports.gossip", "70000 is not a valid port"},
		{"negative port", func(c *Config) { c.Ports.RPC = -1 }, "ports.rpc", "-1 is not a valid port"},
		{"equal ports", func(c *Config) { c.Ports.RPC = c.Ports.HTTP }, "ports", "must differ"},
		{"bootstrap_expect without server", func(c *Config) { c.BootstrapExpect = 3 }, "bootstrap_expect", "only servers bootstrap"},
		{"negative bootstrap_expect", func(c *Config) { c.Server = true; c.BootstrapExpect = -1 }, "bootstrap_expect", "must not be negative"},
		{"join port not a number", func(c *Config) { c.Join = []string{"10.0.0.1", "host:notaport"} }, "join[1]", `"host:notaport" has an invalid port`},
		{"join port out of range", func(c *Config) { c.Join = []string{"host:70000"} }, "join[0]", "invalid port"},
		{"join empty", func(c *Config) { c.Join = []string{" "} }, "join[0]", "empty address"},
		{"join no host", func(c *Config) { c.Join = []string{":7701"} }, "join[0]", "has no host"},
		{"retry_join bad", func(c *Config) { c.RetryJoin = []string{"a/b"} }, "retry_join[0]", "not a host or host:port"},
		{"retry interval zero", func(c *Config) { c.RetryInterval = 0 }, "retry_interval", "must be positive"},
		{"gateway http not host:port", func(c *Config) { c.Gateway.HTTP = "8080" }, "gateway.http", "not host:port"},
		{"own CA without key file", func(c *Config) {
			c.Security.CAFile, c.Security.CertFile = "ca.pem", "n.pem"
			c.Security.GossipKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		}, "security.key_file", "required when bringing your own CA"},
		{"own CA without gossip key", func(c *Config) { c.Security.CAFile, c.Security.CertFile, c.Security.KeyFile = "a", "b", "c" }, "security.gossip_key", "every node needs the same 32-byte key"},
		{"gossip key wrong size", func(c *Config) {
			c.Security.CAFile, c.Security.CertFile, c.Security.KeyFile = "a", "b", "c"
			c.Security.GossipKey = "c2hvcnQ="
		}, "security.gossip_key", "32 bytes"},
		{"gossip key without own CA", func(c *Config) { c.Security.GossipKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }, "security.gossip_key", "only used with your own CA"},
		{"token with own CA", func(c *Config) {
			c.Security.CAFile, c.Security.CertFile, c.Security.KeyFile = "a", "b", "c"
			c.Security.GossipKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			c.Security.Token = "herd1.x"
		}, "security.token", "join tokens need herd's own CA"},
		{"token while disabled", func(c *Config) { c.Security.Disabled, c.Security.Token = true, "herd1.x" }, "security.token", "set while security.disabled"},
		{"token and token file", func(c *Config) { c.Security.Token, c.Security.TokenFile = "herd1.x", "/run/herd/join.token" }, "security.token_file", "set together with security.token (--token-file and --token)"},
		{"token file while disabled", func(c *Config) { c.Security.Disabled, c.Security.TokenFile = true, "/t" }, "security.token_file", "set while security.disabled"},
		{"token file with own CA", func(c *Config) {
			c.Security.CAFile, c.Security.CertFile, c.Security.KeyFile = "a", "b", "c"
			c.Security.GossipKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			c.Security.TokenFile = "/t"
		}, "security.token_file", "join tokens need herd's own CA"},
		{"bootstrap dir on a client", func(c *Config) { c.Security.BootstrapDir = "/b" }, "security.bootstrap_dir", "only a server"},
		{"bootstrap dir in dev mode", func(c *Config) { c.Dev, c.Server, c.Security.BootstrapDir = true, true, "/b" }, "security.bootstrap_dir", "not with --dev"},
		{"bootstrap dir while disabled", func(c *Config) { c.Server, c.Security.Disabled, c.Security.BootstrapDir = true, true, "/b" }, "security.bootstrap_dir", "set while security.disabled"},
		{"bootstrap dir with own CA", func(c *Config) {
			c.Server = true
			c.Security.CAFile, c.Security.CertFile, c.Security.KeyFile = "a", "b", "c"
			c.Security.GossipKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			c.Security.BootstrapDir = "/b"
		}, "security.bootstrap_dir", "herd acl bootstrap"},
		{"cert ttl too short", func(c *Config) { c.Security.CertTTL = Duration(time.Millisecond) }, "security.cert_ttl", "too short"},
		{"gateway http on a name", func(c *Config) { c.Gateway.HTTP = "localhost:8080" }, "gateway.http", "IP address"},
		{"gateway http bad port", func(c *Config) { c.Gateway.HTTP = ":99999" }, "gateway.http", "invalid port"},
		{"gateway https not host:port", func(c *Config) { c.Gateway.HTTPS = "8443" }, "gateway.https", "not host:port"},
		{"gateway https on a name", func(c *Config) { c.Gateway.HTTPS = "localhost:8443" }, "gateway.https", "IP address"},
		{"gateway https same as http", func(c *Config) { c.Gateway.HTTP, c.Gateway.HTTPS = ":8080", ":8080" }, "gateway.https", "also gateway.http"},
		{"gateway tls without https", func(c *Config) { c.Gateway.TLS = []TLSCert{{CertFile: "a", KeyFile: "b"}} }, "gateway.tls", "need an HTTPS listener"},
		{"gateway tls cert file missing", func(c *Config) {
			c.Gateway.HTTPS = ":8443"
			c.Gateway.TLS = []TLSCert{{KeyFile: "b"}}
		}, "gateway.tls[0].cert_file", "required"},
		{"gateway tls key file missing", func(c *Config) {
			c.Gateway.HTTPS = ":8443"
			c.Gateway.TLS = []TLSCert{{CertFile: "a"}, {CertFile: "a"}}
		}, "gateway.tls[1].key_file", "required"},
		{"gateway tcp port zero", func(c *Config) { c.Gateway.TCPPorts = []int{0} }, "gateway.tcp_ports[0]", "not a valid port"},
		{"gateway tcp port twice", func(c *Config) { c.Gateway.TCPPorts = []int{5432, 5432} }, "gateway.tcp_ports[1]", "listed twice"},
		{"retry max below interval", func(c *Config) { c.RetryMaxInterval = Duration(time.Millisecond) }, "retry_max_interval", "at least retry_interval"},
		{"dead server cleanup zero", func(c *Config) { c.DeadServerCleanup = 0 }, "dead_server_cleanup", "must be positive"},
		{"workload port range", func(c *Config) { c.Workload.PortMin, c.Workload.PortMax = 30000, 20000 }, "workload.port_max", "must be in port_min (30000)-65535"},
		{"workload low port", func(c *Config) { c.Workload.PortMin = 80 }, "workload.port_min", "80 is not a port in 1024-65535"},
		{"workload cpu", func(c *Config) { c.Workload.CPU = -1 }, "workload.cpu", "must not be negative"},
		{"bad label key", func(c *Config) { c.Labels = map[string]string{"bad key": "v"} }, "labels.bad key", "invalid label key"},
		{"long label value", func(c *Config) { c.Labels = map[string]string{"k": strings.Repeat("v", 64)} }, "labels.k", "longer than 63"},
		{"long zone", func(c *Config) { c.Zone = strings.Repeat("z", 64) }, "zone", "longer than 63"},
		{"bad log level", func(c *Config) { c.LogLevel = "verbose" }, "log_level", `"verbose" is not one of debug, info, warn, error`},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, "log_format", `"xml" is not one of text, json`},
		{"lease longer than heartbeat", func(c *Config) { c.Raft.LeaderLeaseTimeout = c.Raft.HeartbeatTimeout + Duration(time.Millisecond) }, "raft.leader_lease_timeout", "must not exceed raft.heartbeat_timeout"},
		{"election timeout too short", func(c *Config) { c.Raft.ElectionTimeout = Duration(time.Millisecond) }, "raft.election_timeout", "too short"},
		{"zero snapshot threshold", func(c *Config) { c.Raft.SnapshotThreshold = 0 }, "raft.snapshot_threshold", "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			var found bool
			for _, fe := range fieldErrors(t, err) {
				if fe.Field == tt.field && strings.Contains(fe.Msg, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("Validate() = %q; want an error for field %q containing %q", err, tt.field, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field+": ") {
				t.Errorf("error text %q does not name %q", err, tt.field)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := validConfig()
	c.BindAddr = "nope"
	c.LogLevel = "loud"
	c.Ports.HTTP = 70000
	fes := fieldErrors(t, c.Validate())
	got := make(map[string]bool)
	for _, fe := range fes {
		got[fe.Field] = true
	}
	for _, f := range []string{"bind_addr", "log_level", "ports.http"} {
		if !got[f] {
			t.Errorf("no error for %s among %v", f, fes)
		}
	}
}

func TestFinalizeDev(t *testing.T) {
	c := Default()
	c.Dev = true
	if err := c.Finalize(); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if !c.Server || c.BootstrapExpect != 1 || c.BindAddr != "127.0.0.1" || c.NodeName != "dev" {
		t.Errorf("dev defaults: Server=%v BootstrapExpect=%d BindAddr=%q NodeName=%q; want true, 1, 127.0.0.1, dev",
			c.Server, c.BootstrapExpect, c.BindAddr, c.NodeName)
	}

	// Explicit settings win over the dev defaults.
	c = Default()
	c.Dev = true
	c.BootstrapExpect = 3
	c.BindAddr = "10.0.0.9"
	c.NodeName = "mine"
	if err := c.Finalize(); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if !c.Server || c.BootstrapExpect != 3 || c.BindAddr != "10.0.0.9" || c.NodeName != "mine" {
		t.Errorf("dev with explicit settings: %+v", c)
	}
}

func TestFinalizeDefaults(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no hostname: %v", err)
	}
	c := Default()
	c.DataDir = "/var/lib/herd"
	err = c.Finalize()
	if c.NodeName != host || c.BindAddr != "0.0.0.0" || c.Server || c.BootstrapExpect != 0 {
		t.Errorf("non-dev defaults: NodeName=%q BindAddr=%q Server=%v BootstrapExpect=%d; want %q, 0.0.0.0, false, 0",
			c.NodeName, c.BindAddr, c.Server, c.BootstrapExpect, host)
	}
	if err != nil && nodeNameRe.MatchString(host) {
		t.Errorf("Finalize: %v", err)
	}

	// Without a data dir and not in dev mode, Finalize reports it.
	c = Default()
	c.NodeName = "n"
	for _, fe := range fieldErrors(t, c.Finalize()) {
		if fe.Field == "data_dir" {
			return
		}
	}
	t.Error("Finalize without data_dir did not report data_dir")
}

func TestDuration(t *testing.T) {
	d := Duration(1500 * time.Millisecond)
	if d.D() != 1500*time.Millisecond || d.String() != "1.5s" {
		t.Errorf("Duration: D()=%v String()=%q", d.D(), d.String())
	}
}
