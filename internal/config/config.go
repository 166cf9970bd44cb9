// Package config defines the agent's configuration: the YAML file, its
// defaults, and validation that names the offending field.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Default ports. Every port must be 1-65535 unless Ephemeral is set, in
// which case zero picks a free port.
const (
	DefaultHTTPPort   = 7700
	DefaultGossipPort = 7701
	DefaultRPCPort    = 7702
)

// Ports are the TCP/UDP ports an agent listens on.
type Ports struct {
	// HTTP is the API and UI port. Default 7700.
	HTTP int `yaml:"http"`
	// Gossip is the memberlist port, TCP and UDP. Default 7701.
	Gossip int `yaml:"gossip"`
	// RPC is the Raft transport port (servers only). Default 7702.
	RPC int `yaml:"rpc"`
}

// Raft tunes the consensus timers. Zero fields take the defaults, which are
// chosen so that a new leader is elected about one second after the old one
// dies on a LAN.
type Raft struct {
	// HeartbeatTimeout is how long a follower waits without contact from
	// the leader before starting an election. Default 500ms.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// ElectionTimeout is how long a candidate waits for votes. Default 500ms.
	ElectionTimeout Duration `yaml:"election_timeout"`
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// contact with a quorum. Default 250ms.
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout"`
	// SnapshotThreshold is how many log entries trigger a snapshot.
	// Default 8192.
	SnapshotThreshold uint64 `yaml:"snapshot_threshold"`
	// SnapshotInterval is how often the threshold is checked. Default 30s.
	SnapshotInterval Duration `yaml:"snapshot_interval"`
	// TrailingLogs is how many entries are kept after a snapshot so slow
	// followers can catch up from the log. Default 10240.
	TrailingLogs uint64 `yaml:"trailing_logs"`
}

// DefaultDevGatewayPort is the gateway's HTTP port in dev mode.
const DefaultDevGatewayPort = 7780

// VIP configures how an agent takes part in floating addresses (VIPs): it
// may hold one when its gateway serves and a VIP names it eligible.
type VIP struct {
	// Disabled keeps this agent from holding any VIP.
	Disabled bool `yaml:"disabled"`
	// Netns is the network namespace whose interfaces get the addresses,
	// by path (/var/run/netns/NAME, /proc/PID/ns/net); empty means the
	// agent's own.
	Netns string `yaml:"netns"`
}

// Workload configures the replicas an agent runs. Every agent runs the
// replicas the cluster places on it unless Disabled.
type Workload struct {
	// Disabled keeps this agent from running replicas (it registers no
	// node).
	Disabled bool `yaml:"disabled"`
	// CPU (millicores) and MemoryMB are what the node offers to replicas.
	// Default: all of the machine's (cores × 1000, total memory).
	CPU      int `yaml:"cpu"`
	MemoryMB int `yaml:"memory_mb"`
	// PortMin..PortMax is the range replica ports come from. Default
	// 20000-32000.
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`
	// DockerHost is the Docker engine to use; empty: $DOCKER_HOST or the
	// default socket. A node without an engine runs no docker replicas.
	DockerHost string `yaml:"docker_host"`
	// NodeGrace is how long (on the leader) a failed node may come back
	// before its replicas are replaced. Default 2s.
	NodeGrace Duration `yaml:"node_grace"`
	// AutoscaleInterval is how often (on the leader) the autoscaler reads
	// the load of services with an autoscale section. Default 5s.
	AutoscaleInterval Duration `yaml:"autoscale_interval"`
	// StopOnExit stops this agent's replicas when it stops (dev mode and
	// tests). By default they keep running and the next agent started on
	// the same data dir re-attaches to them. Not read from the file.
	StopOnExit bool `yaml:"-"`
}

// Defaults of the workload section.
const (
	DefaultPortMin           = 20000
	DefaultPortMax           = 32000
	DefaultNodeGrace         = 2 * time.Second
	DefaultAutoscaleInterval = 5 * time.Second
)

// Gateway configures the agent's load-balancing gateway. It is off unless
// a listener is set (in dev mode it listens on 127.0.0.1:7780).
type Gateway struct {
	// HTTP is the HTTP listener's address, host:port (":8080" binds every
	// address). Empty: no HTTP gateway.
	HTTP string `yaml:"http"`
	// HTTPS is the TLS listener's address, host:port. It offers HTTP/2
	// and HTTP/1.1 (ALPN) and picks the certificate by SNI. Empty: none.
	HTTPS string `yaml:"https"`
	// TLS lists certificate files for HTTPS, re-read when they change.
	TLS []TLSCert `yaml:"tls"`
	// TLSKVPrefix is where HTTPS certificates are kept in the KV store:
	// every key under it whose value is a PEM certificate chain followed
	// by its PEM private key. Default "herd/tls/".
	TLSKVPrefix string `yaml:"tls_kv_prefix"`
	// TCPPorts are ports for TCP services' listeners, bound on bind_addr.
	TCPPorts []int `yaml:"tcp_ports"`
	// AccessLog is where the JSON access log goes: "" (none), "stdout",
	// or a file path (appended to).
	AccessLog string `yaml:"access_log"`
}

// TLSCert is a certificate for the gateway's HTTPS listener: PEM files
// holding the certificate chain and its private key.
type TLSCert struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultTLSKVPrefix is where the gateway looks for certificates in the KV
// store.
const DefaultTLSKVPrefix = "herd/tls/"

// Config is the whole agent configuration.
type Config struct {
	// NodeName names this agent in the cluster; unique. Default: hostname.
	NodeName string `yaml:"node_name"`
	// DataDir holds the Raft log, snapshots and node identity. Required
	// unless Dev is set.
	DataDir string `yaml:"data_dir"`
	// BindAddr is the IP address all listeners bind to. Default 0.0.0.0,
	// 127.0.0.1 in dev mode.
	BindAddr string `yaml:"bind_addr"`
	// AdvertiseAddr is the address other agents use to reach this one.
	// Default: BindAddr, or the first private IP when BindAddr is 0.0.0.0.
	AdvertiseAddr string `yaml:"advertise_addr"`
	// Ports are the listening ports.
	Ports Ports `yaml:"ports"`
	// Server makes this agent a Raft voter that holds the cluster state.
	Server bool `yaml:"server"`
	// BootstrapExpect is how many servers must be seen over gossip before
	// the first Raft configuration is written. 0 means never bootstrap
	// (join an existing cluster). Servers only.
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// Join lists the API addresses (host or host:port, default port 7700)
	// of agents to join at start; the agent asks each for its gossip
	// address (and, with security.token, for its certificate). The agent
	// fails to start if none can be reached.
	Join []string `yaml:"join"`
	// RetryJoin lists API addresses joined in the background, retried
	// with exponential back-off until one answers.
	RetryJoin []string `yaml:"retry_join"`
	// RetryInterval is the first back-off step for RetryJoin. Default 1s;
	// the back-off doubles up to RetryMaxInterval.
	RetryInterval Duration `yaml:"retry_interval"`
	// RetryMaxInterval caps the RetryJoin back-off. Default 30s.
	RetryMaxInterval Duration `yaml:"retry_max_interval"`
	// Zone is the failure domain this node is in, e.g. a rack or an
	// availability zone. Optional.
	Zone string `yaml:"zone"`
	// Labels are free-form key/value attributes of the node.
	Labels map[string]string `yaml:"labels"`
	// DeadServerCleanup is how long a server may stay failed before the
	// leader removes it from the Raft configuration. Default 30s; it is
	// never removed if that would leave fewer live voters than a quorum.
	DeadServerCleanup Duration `yaml:"dead_server_cleanup"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// EnableDebug serves Go's profiler at /debug/pprof/ on the HTTP API.
	// Default false.
	EnableDebug bool `yaml:"enable_debug"`
	// Raft tunes consensus timers.
	Raft Raft `yaml:"raft"`
	// Gateway configures the load-balancing gateway this agent runs.
	Gateway Gateway `yaml:"gateway"`
	// Workload configures the replicas this agent runs for the cluster.
	Workload Workload `yaml:"workload"`
	// VIP configures this agent's part in floating addresses.
	VIP VIP `yaml:"vip"`
	// Security configures TLS between nodes and on the API, gossip
	// encryption, join tokens and ACLs. On by default.
	Security Security `yaml:"security"`
	// Dev runs a single in-memory-ish node (server and client) with data
	// in a temporary directory and listeners on loopback. Not read from
	// the file; set by --dev.
	Dev bool `yaml:"-"`
	// Ephemeral makes every port that is zero pick a free port at start
	// instead of the default. Used by tests; not read from the file.
	Ephemeral bool `yaml:"-"`
}

// Security configures how the agent proves who it is and checks who it
// talks to. By default it is on: the first server creates a cluster CA,
// other nodes join with a token, every node-to-node connection is mutual
// TLS 1.3, gossip is encrypted, and the API wants an ACL token.
type Security struct {
	// Disabled turns all of it off: plaintext everywhere, no ACLs. For
	// benchmarks and throw-away experiments on a trusted network only.
	Disabled bool `yaml:"disabled"`
	// Token is a join token from `herd token create`: a new node uses it
	// once to obtain its certificate and the gossip key from the agent at
	// its join address. Ignored once the node holds a certificate.
	Token string `yaml:"token"`
	// TokenFile is a file holding the join token (surrounding whitespace
	// is trimmed), instead of Token. A node that needs the token waits
	// until the file exists and is not empty, e.g. until the first server
	// writes it into its BootstrapDir; a node that holds a certificate
	// does not read it. Not with Token.
	TokenFile string `yaml:"token_file"`
	// BootstrapDir makes a server that creates a new cluster bootstrap
	// the ACLs once it leads and write, into this directory (created with
	// mode 0700 if missing), the files management.token, server.token and
	// client.token (a server and a client join token, valid 24h) and
	// ca.pem, each with mode 0600. A server that joins a cluster, or
	// restarts on its state, writes nothing. Servers only; not in dev
	// mode, which prints its management token instead.
	BootstrapDir string `yaml:"bootstrap_dir"`
	// CAFile, CertFile and KeyFile bring your own CA: the cluster CA
	// certificate (PEM) and this node's certificate and key, issued by
	// that CA with the node name as CN, its role ("server" or "client") as
	// OU and its advertise address as an IP SAN. The CA key stays with the
	// operator, so herd issues no certificates and join tokens are off;
	// the files are re-read when they change. All three or none.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// GossipKey is the gossip encryption key (32 bytes, base64) when you
	// bring your own CA. Every node needs the same one.
	GossipKey string `yaml:"gossip_key"`
	// CertTTL is the lifetime of the node certificates herd issues; each
	// node renews its own at two thirds of it. Default 24h.
	CertTTL Duration `yaml:"cert_ttl"`
	// AuditLog is where every write through the API is logged as JSON
	// lines: a file path, "stdout", or "off". Default: audit.log in the
	// data dir.
	AuditLog string `yaml:"audit_log"`
}

// BringYourOwnCA reports whether the operator supplies the certificates.
func (s Security) BringYourOwnCA() bool { return s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" }

// DefaultCertTTL is the default lifetime of node certificates.
const DefaultCertTTL = 24 * time.Hour

// Duration is a time.Duration written as a Go duration string ("250ms",
// "30s") in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Default returns a Config with every default filled in except NodeName,
// DataDir and addresses, which depend on the host and the mode.
func Default() Config {
	return Config{
		Ports:             Ports{HTTP: DefaultHTTPPort, Gossip: DefaultGossipPort, RPC: DefaultRPCPort},
		RetryInterval:     Duration(time.Second),
		RetryMaxInterval:  Duration(30 * time.Second),
		DeadServerCleanup: Duration(30 * time.Second),
		LogLevel:          "info",
		LogFormat:         "text",
		Gateway:           Gateway{TLSKVPrefix: DefaultTLSKVPrefix},
		Security:          Security{CertTTL: Duration(DefaultCertTTL)},
		Workload: Workload{PortMin: DefaultPortMin, PortMax: DefaultPortMax, NodeGrace: Duration(DefaultNodeGrace),
			AutoscaleInterval: Duration(DefaultAutoscaleInterval)},
		Raft: Raft{
			HeartbeatTimeout:   Duration(500 * time.Millisecond),
			ElectionTimeout:    Duration(500 * time.Millisecond),
			LeaderLeaseTimeout: Duration(250 * time.Millisecond),
			SnapshotThreshold:  8192,
			SnapshotInterval:   Duration(30 * time.Second),
			TrailingLogs:       10240,
		},
	}
}

var nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
var labelKeyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$`)

// FieldError is a validation error that names the offending field by its
// YAML path, e.g. "ports.http".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Finalize fills host- and mode-dependent defaults (node name, addresses,
// dev settings) and then validates. It returns every problem found, joined.
func (c *Config) Finalize() error {
	if c.Dev {
		c.Server = true
		if c.BootstrapExpect == 0 {
			c.BootstrapExpect = 1
		}
		if c.BindAddr == "" {
			c.BindAddr = "127.0.0.1"
		}
		if c.NodeName == "" {
			c.NodeName = "dev"
		}
		if c.Gateway.HTTP == "" {
			port := DefaultDevGatewayPort
			if c.Ephemeral {
				port = 0
			}
			c.Gateway.HTTP = net.JoinHostPort(c.BindAddr, strconv.Itoa(port))
		}
		// A dev agent's data dir is temporary: its replicas go with it.
		c.Workload.StopOnExit = true
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node_name: not set and hostname unknown: %w", err)
		}
		c.NodeName = h
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	return c.Validate()
}

// Validate checks every field and returns all problems, each naming its
// field.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	if !nodeNameRe.MatchString(c.NodeName) {
		add(fieldErr("node_name", "%q is not a valid node name (letters, digits, '_', '.', '-'; at most 63; starts with a letter or digit)", c.NodeName))
	}
	if c.DataDir == "" && !c.Dev {
		add(fieldErr("data_dir", "required (or use --dev for a throw-away node)"))
	}
	if ip := net.ParseIP(c.BindAddr); ip == nil {
		add(fieldErr("bind_addr", "%q is not an IP address", c.BindAddr))
	}
	if c.AdvertiseAddr != "" {
		if ip := net.ParseIP(c.AdvertiseAddr); ip == nil || ip.IsUnspecified() {
			add(fieldErr("advertise_addr", "%q is not a usable IP address", c.AdvertiseAddr))
		}
	}
	for name, p := range map[string]int{"ports.http": c.Ports.HTTP, "ports.gossip": c.Ports.Gossip, "ports.rpc": c.Ports.RPC} {
		if p < 0 || p > 65535 || (p == 0 && !c.Ephemeral) {
			add(fieldErr(name, "%d is not a valid port (1-65535)", p))
		}
	}
	if !c.Ephemeral {
		if c.Ports.HTTP == c.Ports.Gossip || c.Ports.HTTP == c.Ports.RPC || c.Ports.Gossip == c.Ports.RPC {
			add(fieldErr("ports", "http, gossip and rpc ports must differ (got %d, %d, %d)", c.Ports.HTTP, c.Ports.Gossip, c.Ports.RPC))
		}
	}
	if c.BootstrapExpect < 0 {
		add(fieldErr("bootstrap_expect", "must not be negative"))
	}
	if c.BootstrapExpect > 0 && !c.Server {
		add(fieldErr("bootstrap_expect", "only servers bootstrap; set server: true"))
	}
	for i, a := range c.Join {
		if err := checkJoinAddr(a); err != nil {
			add(fieldErr(fmt.Sprintf("join[%d]", i), "%v", err))
		}
	}
	for i, a := range c.RetryJoin {
		if err := checkJoinAddr(a); err != nil {
			add(fieldErr(fmt.Sprintf("retry_join[%d]", i), "%v", err))
		}
	}
	if c.RetryInterval <= 0 {
		add(fieldErr("retry_interval", "must be positive"))
	}
	if c.RetryMaxInterval < c.RetryInterval {
		add(fieldErr("retry_max_interval", "must be at least retry_interval (%s)", c.RetryInterval))
	}
	if c.DeadServerCleanup <= 0 {
		add(fieldErr("dead_server_cleanup", "must be positive"))
	}
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !labelKeyRe.MatchString(k) {
			add(fieldErr("labels."+k, "invalid label key (letters, digits, '_', '.', '/', '-')"))
		}
		if len(c.Labels[k]) > 63 {
			add(fieldErr("labels."+k, "value longer than 63 bytes"))
		}
	}
	if len(c.Zone) > 63 {
		add(fieldErr("zone", "longer than 63 bytes"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add(fieldErr("log_level", "%q is not one of debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add(fieldErr("log_format", "%q is not one of text, json", c.LogFormat))
	}
	r := c.Raft
	for name, d := range map[string]Duration{"raft.heartbeat_timeout": r.HeartbeatTimeout, "raft.election_timeout": r.ElectionTimeout, "raft.leader_lease_timeout": r.LeaderLeaseTimeout, "raft.snapshot_interval": r.SnapshotInterval} {
		if d < Duration(5*time.Millisecond) {
			add(fieldErr(name, "%s is too short (at least 5ms)", d))
		}
	}
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		add(fieldErr("raft.leader_lease_timeout", "must not exceed raft.heartbeat_timeout"))
	}
	if w := c.Workload; !w.Disabled {
		switch {
		case w.CPU < 0:
			add(fieldErr("workload.cpu", "must not be negative"))
		case w.MemoryMB < 0:
			add(fieldErr("workload.memory_mb", "must not be negative"))
		}
		switch {
		case w.PortMin < 1024 || w.PortMin > 65535:
			add(fieldErr("workload.port_min", "%d is not a port in 1024-65535", w.PortMin))
		case w.PortMax < w.PortMin || w.PortMax > 65535:
			add(fieldErr("workload.port_max", "%d must be in port_min (%d)-65535", w.PortMax, w.PortMin))
		}
		if w.NodeGrace < 0 {
			add(fieldErr("workload.node_grace", "must not be negative"))
		}
		if w.AutoscaleInterval < Duration(100*time.Millisecond) {
			add(fieldErr("workload.autoscale_interval", "%s is too short (at least 100ms)", w.AutoscaleInterval))
		}
	}
	if r.SnapshotThreshold == 0 {
		add(fieldErr("raft.snapshot_threshold", "must be positive"))
	}
	if c.Gateway.HTTP != "" {
		if err := checkListenAddr(c.Gateway.HTTP, c.Ephemeral); err != nil {
			add(fieldErr("gateway.http", "%v", err))
		}
	}
	if c.Gateway.HTTPS != "" {
		if err := checkListenAddr(c.Gateway.HTTPS, c.Ephemeral); err != nil {
			add(fieldErr("gateway.https", "%v", err))
		} else if c.Gateway.HTTPS == c.Gateway.HTTP {
			add(fieldErr("gateway.https", "%q is also gateway.http", c.Gateway.HTTPS))
		}
	}
	if len(c.Gateway.TLS) > 0 && c.Gateway.HTTPS == "" {
		add(fieldErr("gateway.tls", "certificates need an HTTPS listener (gateway.https)"))
	}
	for i, tc := range c.Gateway.TLS {
		if tc.CertFile == "" {
			add(fieldErr(fmt.Sprintf("gateway.tls[%d].cert_file", i), "required"))
		}
		if tc.KeyFile == "" {
			add(fieldErr(fmt.Sprintf("gateway.tls[%d].key_file", i), "required"))
		}
	}
	seen := map[int]bool{}
	for i, p := range c.Gateway.TCPPorts {
		if p < 1 || p > 65535 {
			add(fieldErr(fmt.Sprintf("gateway.tcp_ports[%d]", i), "%d is not a valid port (1-65535)", p))
		}
		if seen[p] {
			add(fieldErr(fmt.Sprintf("gateway.tcp_ports[%d]", i), "port %d is listed twice", p))
		}
		seen[p] = true
	}
	for _, err := range c.Security.validate(c) {
		add(err)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// validate checks the security section against the rest of c.
func (s Security) validate(c *Config) []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if s.Token != "" && s.TokenFile != "" {
		add(fieldErr("security.token_file", "set together with security.token (--token-file and --token): give the join token one way"))
	}
	if s.BootstrapDir != "" {
		switch {
		case c.Dev:
			add(fieldErr("security.bootstrap_dir", "not with --dev: a dev agent prints its management token itself"))
		case !c.Server:
			add(fieldErr("security.bootstrap_dir", "only a server creates a cluster and writes its bootstrap files; set server: true (--server)"))
		}
	}
	if s.Disabled {
		for field, v := range map[string]string{"security.token": s.Token, "security.token_file": s.TokenFile, "security.bootstrap_dir": s.BootstrapDir,
			"security.ca_file": s.CAFile, "security.gossip_key": s.GossipKey} {
			if v != "" {
				add(fieldErr(field, "set while security.disabled is true"))
			}
		}
		return errs
	}
	if s.BringYourOwnCA() {
		for field, v := range map[string]string{"security.ca_file": s.CAFile, "security.cert_file": s.CertFile, "security.key_file": s.KeyFile} {
			if v == "" {
				add(fieldErr(field, "required when bringing your own CA (set ca_file, cert_file and key_file together)"))
			}
		}
		if s.GossipKey == "" {
			add(fieldErr("security.gossip_key", "required when bringing your own CA: every node needs the same 32-byte key, base64 (e.g. from `head -c32 /dev/urandom | base64`)"))
		}
		if s.Token != "" {
			add(fieldErr("security.token", "join tokens need herd's own CA; with your own CA, nodes join with the certificates you issue"))
		}
		if s.TokenFile != "" {
			add(fieldErr("security.token_file", "join tokens need herd's own CA; with your own CA, nodes join with the certificates you issue"))
		}
		if s.BootstrapDir != "" {
			add(fieldErr("security.bootstrap_dir", "herd issues no join tokens with your own CA; make the management token with `herd acl bootstrap`"))
		}
	}
	if s.GossipKey != "" {
		if k, err := base64.StdEncoding.DecodeString(s.GossipKey); err != nil || len(k) != 32 {
			add(fieldErr("security.gossip_key", "must be 32 bytes, base64-encoded"))
		} else if !s.BringYourOwnCA() {
			add(fieldErr("security.gossip_key", "only used with your own CA (ca_file); herd's own CA hands the gossip key to joining nodes"))
		}
	}
	if s.CertTTL < Duration(time.Second) {
		add(fieldErr("security.cert_ttl", "%s is too short (at least 1s)", s.CertTTL))
	}
	return errs
}

// checkListenAddr checks a host:port to listen on (host may be empty).
func checkListenAddr(a string, allowZero bool) error {
	host, p, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: listen on an IP address, not a name", a)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 || (port == 0 && !allowZero) {
		return fmt.Errorf("%q has an invalid port", a)
	}
	return nil
}

func checkJoinAddr(a string) error {
	if strings.TrimSpace(a) == "" {
		return errors.New("empty address")
	}
	host := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		host = h
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("%q has an invalid port", a)
		}
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if strings.ContainsAny(host, " /\\") {
		return fmt.Errorf("%q is not a host or host:port", a)
	}
	return nil
}
