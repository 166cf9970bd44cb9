package config

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fullFile sets every field that the file may set.
const fullFile = `# herd agent configuration
node_name: node-1
data_dir: /var/lib/herd
bind_addr: 10.0.0.5
advertise_addr: 192.168.1.5
ports:
  http: 8500
  gossip: 8501
  rpc: 8502
server: true
bootstrap_expect: 3
join:
  - 10.0.0.1
  - "10.0.0.2:8501"
retry_join: [seed.example.com, "seed2.example.com:7701"]
retry_interval: 2s
retry_max_interval: 1m
zone: eu-west-1a
labels:
  rack: r12
  version: 1.10
dead_server_cleanup: 5m
log_level: debug
log_format: json
raft:
  heartbeat_timeout: 1s
  election_timeout: 1500ms
  leader_lease_timeout: 750ms
  snapshot_threshold: 16384
  snapshot_interval: 2m30s
  trailing_logs: 20480
gateway:
  http: 0.0.0.0:8080
  https: 0.0.0.0:8443
  tls:
    - cert_file: /etc/herd/tls/example.crt
      key_file: /etc/herd/tls/example.key
  tls_kv_prefix: certs/
  tcp_ports: [5432, 6379]
  access_log: stdout
workload:
  cpu: 4000
  memory_mb: 8192
  port_min: 30000
  port_max: 30999
  docker_host: unix:///run/docker.sock
  node_grace: 3s
security:
  token: herd1.0123456789abcdef.0123456789abcdef0123456789abcdef.0000000000000000000000000000000000000000000000000000000000000000
  cert_ttl: 12h
  audit_log: /var/log/herd/audit.log
  bootstrap_dir: /var/lib/herd-bootstrap
`

func fullConfig() Config {
	return Config{
		NodeName:          "node-1",
		DataDir:           "/var/lib/herd",
		BindAddr:          "10.0.0.5",
		AdvertiseAddr:     "192.168.1.5",
		Ports:             Ports{HTTP: 8500, Gossip: 8501, RPC: 8502},
		Server:            true,
		BootstrapExpect:   3,
		Join:              []string{"10.0.0.1", "10.0.0.2:8501"},
		RetryJoin:         []string{"seed.example.com", "seed2.example.com:7701"},
		RetryInterval:     Duration(2 * time.Second),
		RetryMaxInterval:  Duration(time.Minute),
		Zone:              "eu-west-1a",
		Labels:            map[string]string{"rack": "r12", "version": "1.10"},
		DeadServerCleanup: Duration(5 * time.Minute),
		LogLevel:          "debug",
		LogFormat:         "json",
		Raft: Raft{
			HeartbeatTimeout:   Duration(time.Second),
			ElectionTimeout:    Duration(1500 * time.Millisecond),
			LeaderLeaseTimeout: Duration(750 * time.Millisecond),
			SnapshotThreshold:  16384,
			SnapshotInterval:   Duration(150 * time.Second),
			TrailingLogs:       20480,
		},
		Gateway: Gateway{HTTP: "0.0.0.0:8080", HTTPS: "0.0.0.0:8443", TLSKVPrefix: "certs/",
			TLS:      []TLSCert{{CertFile: "/etc/herd/tls/example.crt", KeyFile: "/etc/herd/tls/example.key"}},
			TCPPorts: []int{5432, 6379}, AccessLog: "stdout"},
		Workload: Workload{CPU: 4000, MemoryMB: 8192, PortMin: 30000, PortMax: 30999,
			DockerHost: "unix:///run/docker.sock", NodeGrace: Duration(3 * time.Second), AutoscaleInterval: Duration(5 * time.Second)},
		Security: Security{Token: "herd1.0123456789abcdef.0123456789abcdef0123456789abcdef.0000000000000000000000000000000000000000000000000000000000000000",
			CertTTL: Duration(12 * time.Hour), AuditLog: "/var/log/herd/audit.log", BootstrapDir: "/var/lib/herd-bootstrap"},
	}
}

func TestParseFullFile(t *testing.T) {
	got, err := Parse([]byte(fullFile), Default())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := fullConfig()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse mismatch\n got: %+v\nwant: %+v", got, want)
	}
	if err := got.Finalize(); err != nil {
		t.Fatalf("Finalize of a full valid file: %v", err)
	}
}

// TestMarshalRoundTrip checks that a Config written with yaml.Marshal
// parses back to the same value, so every field has a working yaml tag.
func TestMarshalRoundTrip(t *testing.T) {
	want := fullConfig()
	want.Dev, want.Ephemeral = true, true // not written, not read
	data, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "dev") || strings.Contains(string(data), "ephemeral") {
		t.Errorf("yaml:\"-\" fields were marshalled:\n%s", data)
	}
	got, err := Parse(data, Config{})
	if err != nil {
		t.Fatalf("Parse of marshalled config: %v\n%s", err, data)
	}
	want.Dev, want.Ephemeral = false, false
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v\nyaml:\n%s", got, want, data)
	}
}

func TestParseKeepsBase(t *testing.T) {
	base := Default()
	base.NodeName = "from-base"
	base.Join = []string{"base-join"}
	base.Labels = map[string]string{"base": "yes"}
	base.Dev = true

	got, err := Parse([]byte("ports:\n  http: 9000\nlabels:\n  rack: r1\nraft:\n  trailing_logs: 5\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	want := base
	want.Ports.HTTP = 9000
	want.Labels = map[string]string{"rack": "r1"} // replaced, not merged
	want.Raft.TrailingLogs = 5
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(base.Labels, map[string]string{"base": "yes"}) {
		t.Errorf("base.Labels was modified: %v", base.Labels)
	}

	// An explicit null keeps a scalar and clears a list.
	got, err = Parse([]byte("node_name:\njoin: ~\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	if got.NodeName != "from-base" || got.Join != nil {
		t.Errorf("null: NodeName=%q Join=%v, want from-base and nil", got.NodeName, got.Join)
	}
	if !reflect.DeepEqual(base.Join, []string{"base-join"}) {
		t.Errorf("base.Join was modified: %v", base.Join)
	}
}

func TestParseEmpty(t *testing.T) {
	base := Default()
	base.NodeName = "n"
	for _, in := range []string{"", "\n\n", "# just a comment\n", "---\n", "~\n", "null\n", "--- ~\n"} {
		got, err := Parse([]byte(in), base)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, base) {
			t.Errorf("Parse(%q) changed the config: %+v", in, got)
		}
	}
}

// TestParseTokenFile: security.token_file, which the full file cannot set
// beside security.token, is read too.
func TestParseTokenFile(t *testing.T) {
	got, err := Parse([]byte("security:\n  token_file: /bootstrap/server.token\n"), Default())
	if err != nil {
		t.Fatal(err)
	}
	if got.Security.TokenFile != "/bootstrap/server.token" {
		t.Errorf("security.token_file = %q, want /bootstrap/server.token", got.Security.TokenFile)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		path string
		want string // substring of the message
	}{
		{"unknown top-level field", "node_name: a\nnode_nmae: b\n", 2, "node_nmae", "unknown field (known fields: advertise_addr, bind_addr,"},
		{"unknown nested field", "node_name: a\nports:\n  htp: 1\n", 3, "ports.htp", "unknown field (known fields: gossip, http, rpc)"},
		{"unknown raft field", "raft:\n  heartbeat: 1s\n", 2, "raft.heartbeat", "unknown field (known fields: election_timeout, heartbeat_timeout,"},
		{"dev not settable", "dev: true\n", 1, "dev", "unknown field"},
		{"ephemeral not settable", "zone: a\nephemeral: true\n", 2, "ephemeral", "unknown field"},
		{"string for int", "server: true\nlog_level: info\nzone: z\nports:\n  http: abc\n", 5, "ports.http", `expected an integer, got "abc"`},
		{"quoted int", "ports:\n  gossip: \"7701\"\n", 2, "ports.gossip", `expected an integer, got "7701"`},
		{"float for int", "bootstrap_expect: 1.5\n", 1, "bootstrap_expect", "expected an integer, got 1.5"},
		{"int overflow", "bootstrap_expect: 99999999999999999999\n", 1, "bootstrap_expect", "expected an integer"},
		{"negative uint", "raft:\n  snapshot_threshold: -1\n", 2, "raft.snapshot_threshold", "expected a non-negative integer, got -1"},
		{"bad bool", "zone: a\nserver: yes please\n", 2, "server", `expected true or false, got "yes please"`},
		{"yaml 1.1 bool", "server: on\n", 1, "server", `expected true or false, got "on"`},
		{"list for map", "ports:\n  - 1\n  - 2\n", 2, "ports", "expected a map, got a list"},
		{"scalar for map", "raft: fast\n", 1, "raft", `expected a map, got "fast"`},
		{"list for string map", "labels: [a, b]\n", 1, "labels", "expected a map, got a list"},
		{"map for string", "node_name: {a: 1}\n", 1, "node_name", "expected a string, got a map"},
		{"scalar for list", "join: 10.0.0.1\n", 1, "join", `expected a list, got "10.0.0.1"`},
		{"map in list", "retry_join:\n  - a\n  - {b: c}\n", 3, "retry_join[1]", "expected a string, got a map"},
		{"list as label value", "labels:\n  rack: [1]\n", 2, "labels.rack", "expected a string, got a list"},
		{"bad duration", "raft:\n  heartbeat_timeout: fast\n", 2, "raft.heartbeat_timeout", `invalid duration "fast": `},
		{"duration without unit", "retry_interval: 30\n", 1, "retry_interval", `invalid duration "30": missing unit`},
		{"duration as list", "dead_server_cleanup: [1s]\n", 1, "dead_server_cleanup", "expected a duration"},
		{"duplicate top-level key", "zone: a\nlog_level: info\nzone: b\n", 3, "zone", "duplicate key (first set on line 1)"},
		{"duplicate nested key", "ports:\n  http: 1\n  http: 2\n", 3, "ports.http", "duplicate key"},
		{"duplicate label", "labels:\n  a: x\n  a: y\n", 3, "labels.a", "duplicate key"},
		{"two documents", "zone: a\n---\nzone: b\n", 2, "", "a second YAML document"},
		{"top-level list", "- a\n- b\n", 1, "", "the document must be a map of field names to values, got a list"},
		{"top-level scalar", "just text\n", 1, "", `must be a map of field names to values, got "just text"`},
		{"syntax error", "zone: a\nports:\n  http: 1\n   rpc: 2\n", 4, "", "mapping values are not allowed in this context"},
		{"tab indentation", "zone: a\n\tlog_level: info\n", 2, "", "found a tab character"},
		{"merge key", "base: &b {http: 1}\nports:\n  <<: *b\n", 1, "base", "unknown field"},
		{"custom tag", "zone: !secret abc\n", 1, "zone", `unsupported tag "!secret"`},
		{"non-string key", "labels:\n  ? [a]\n  : b\n", 2, "labels", "keys must be strings, got a list"},
		{"alias cycle", "join: &j [*j]\n", 1, "join[0]", "expected a string, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), Default())
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", got)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if de.Line != tt.line || de.Path != tt.path {
				t.Errorf("error %q: line %d path %q, want line %d path %q", err, de.Line, de.Path, tt.line, tt.path)
			}
			prefix := ""
			if tt.line > 0 {
				prefix = "line " + strconv.Itoa(tt.line) + ": "
			}
			if tt.path != "" {
				prefix += tt.path + ": "
			}
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q: want prefix %q and to contain %q", msg, prefix, tt.want)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("Parse returned a non-zero Config with an error")
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := Parse([]byte("zone: a\nbogus: 1\nports:\n  http: x\n  rcp: 1\n"), Default())
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		"line 2: bogus: unknown field",
		`line 4: ports.http: expected an integer, got "x"`,
		"line 5: ports.rcp: unknown field (known fields: gossip, http, rpc)",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write("good.yaml", fullFile)
	got, err := Load(good, Default())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, fullConfig()) {
		t.Errorf("Load(%s) = %+v", good, got)
	}

	bad := write("bad.yaml", "node_name: a\nzone: b\nports:\n  htp: 1\n")
	_, err = Load(bad, Default())
	want := "config " + bad + ": line 4: ports.htp: unknown field (known fields: gossip, http, rpc)"
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) error = %v, want %q", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Path != "ports.htp" {
		t.Errorf("Load(bad) error does not wrap a *DecodeError for ports.htp: %v", err)
	}

	two := write("two.yaml", "nope: 1\nserver: maybe\n")
	_, err = Load(two, Default())
	if err == nil {
		t.Fatal("Load(two) succeeded")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "config "+two+": line ") {
			t.Errorf("error line %q is not prefixed with the file name", line)
		}
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = Load(missing, Default())
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want one naming %s and matching fs.ErrNotExist", err, missing)
	}

	empty := write("empty.yaml", "")
	got, err = Load(empty, Default())
	if err != nil || !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load(empty) = %+v, %v; want Default(), nil", got, err)
	}
}

func TestDurationYAML(t *testing.T) {
	var s struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &s); err != nil || s.D.D() != 90*time.Second {
		t.Fatalf("yaml.Unmarshal: %v, %v", s.D, err)
	}
	out, err := yaml.Marshal(s)
	if err != nil || string(out) != "d: 1m30s\n" {
		t.Fatalf("yaml.Marshal = %q, %v", out, err)
	}
}

// Types for TestUnmarshalStrictGeneric: the decoder is not tied to Config.
type genericCommon struct {
	ID string `yaml:"id"`
}

type genericItem struct {
	Name  string   `yaml:"name"`
	Tags  []string `yaml:"tags,omitempty"`
	Count uint8    `yaml:"count"`
}

type genericSpec struct {
	genericCommon `yaml:",inline"`
	Title         string                 `yaml:"title"`
	Ratio         float64                `yaml:"ratio"`
	Small         int8                   `yaml:"small"`
	Addr          net.IP                 `yaml:"addr"`
	Opt           *genericItem           `yaml:"opt"`
	Items         []genericItem          `yaml:"items"`
	ByName        map[string]genericItem `yaml:"by_name"`
	Extra         any                    `yaml:"extra"`
	Untagged      string
	hidden        string //nolint:unused // must stay unreachable from YAML
}

func TestUnmarshalStrictGeneric(t *testing.T) {
	in := `id: spec-1
title: demo
ratio: 2
small: -8
addr: 10.1.2.3
opt: {name: o, count: 1}
items:
  - name: a
    tags: [x, y]
    count: 255
  - name: b
by_name:
  k: {name: kk}
extra: {any: [thing]}
untagged: u
`
	var s genericSpec
	if err := UnmarshalStrict([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	want := genericSpec{
		genericCommon: genericCommon{ID: "spec-1"},
		Title:         "demo",
		Ratio:         2,
		Small:         -8,
		Addr:          net.ParseIP("10.1.2.3"),
		Opt:           &genericItem{Name: "o", Count: 1},
		Items:         []genericItem{{Name: "a", Tags: []string{"x", "y"}, Count: 255}, {Name: "b"}},
		ByName:        map[string]genericItem{"k": {Name: "kk"}},
		Extra:         map[string]any{"any": []any{"thing"}},
		Untagged:      "u",
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}

	errTests := []struct {
		in, want string
	}{
		{"items:\n  - name: a\n  - nmae: b\n", "line 3: items[1].nmae: unknown field (known fields: count, name, tags)"},
		{"items:\n  - count: 256\n", "line 2: items[0].count: 256 is out of range (0 to 255)"},
		{"small: 128\n", "line 1: small: 128 is out of range (-128 to 127)"},
		{"ratio: lots\n", `line 1: ratio: expected a number, got "lots"`},
		{"addr: not-an-ip\n", "line 1: addr: invalid IP address: not-an-ip"},
		{"by_name:\n  k:\n    name: [1]\n", "line 3: by_name.k.name: expected a string, got a list"},
		{"opt:\n  count: -1\n", "line 2: opt.count: expected a non-negative integer, got -1"},
		{"hidden: x\n", "line 1: hidden: unknown field"},
		{"genericcommon: {}\n", "line 1: genericcommon: unknown field"},
	}
	for _, tt := range errTests {
		var s genericSpec
		err := UnmarshalStrict([]byte(tt.in), &s)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("UnmarshalStrict(%q) = %v, want prefix %q", tt.in, err, tt.want)
		}
	}

	if err := UnmarshalStrict([]byte("id: x\n"), genericSpec{}); err == nil {
		t.Error("UnmarshalStrict into a non-pointer succeeded")
	}
}

func TestUnmarshalStrictManyErrors(t *testing.T) {
	var b strings.Builder
	for i := range 50 {
		b.WriteString("unknown" + strings.Repeat("x", i) + ": 1\n")
	}
	var c Config
	err := UnmarshalStrict([]byte(b.String()), &c)
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "too many errors" {
		t.Errorf("got %d error lines, last %q; want %d and \"too many errors\"", len(lines), lines[len(lines)-1], maxErrors+1)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullFile))
	f.Add([]byte(""))
	f.Add([]byte("ports:\n  htp: 1\n"))
	f.Add([]byte("ports: [1, 2]\nserver: yes please\n"))
	f.Add([]byte("raft:\n  heartbeat_timeout: fast\n"))
	f.Add([]byte("zone: a\nzone: b\n---\nx: 1\n"))
	f.Add([]byte("join: &j [*j]\nlabels: &l {a: *l}\n<<: *l\n"))
	f.Add([]byte("labels: {1: 2, ~: x, [a]: b}\nnode_name: !t v\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := Default()
		base.Join = []string{"j"}
		base.Labels = map[string]string{"k": "v"}
		c, err := Parse(data, base)
		if err != nil {
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("error %v with a non-zero Config", err)
			}
			if err.Error() == "" {
				t.Error("empty error message")
			}
		}
		if !reflect.DeepEqual(base.Join, []string{"j"}) || !reflect.DeepEqual(base.Labels, map[string]string{"k": "v"}) {
			t.Errorf("Parse modified base: %v %v", base.Join, base.Labels)
		}
	})
}
