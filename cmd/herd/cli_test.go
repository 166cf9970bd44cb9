package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/testcluster"
)

// syncBuffer is a bytes.Buffer that a command and its child processes may
// write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one CLI run produced.
type result struct {
	stdout, stderr string
	code           int
}

// herdIn runs the CLI as main does, with stdin, and returns its output
// and exit code.
func herdIn(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errOut syncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(stdin)
	code := execute(root, withCreds(args))
	r := result{stdout: out.String(), stderr: errOut.String(), code: code}
	t.Logf("herd %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

func herd(t testing.TB, args ...string) result {
	t.Helper()
	return herdIn(t, strings.NewReader(""), args...)
}

// cli runs the CLI against node n of c.
func cli(t testing.TB, n *testcluster.Node, args ...string) result {
	t.Helper()
	return herd(t, append([]string{"--address", n.Agent().APIAddr()}, args...)...)
}

func wantCode(t testing.TB, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func wantContains(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Fatalf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func decodeJSON[T any](t testing.TB, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

// tableRows splits table output into rows of fields.
func tableRows(s string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func startCluster(t *testing.T, servers int) *testcluster.Cluster {
	t.Helper()
	return start(t, testcluster.Options{Servers: servers})
}

// start starts a cluster whose agents the CLI in these tests reaches with
// its CA and management token (see withCreds).
func start(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	c := testcluster.Start(t, opts)
	for _, n := range c.Nodes {
		creds.Store(n.Agent().APIAddr(), []string{"--token", c.Token, "--ca-cert", c.CACert})
	}
	return c
}

// creds maps agents' API addresses to the CLI flags that reach them.
var creds sync.Map

// withCreds adds the credentials of the cluster that --address names,
// unless the arguments give their own, as an operator's environment
// would.
func withCreds(args []string) []string {
	addr := os.Getenv("HERD_ADDR")
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--token" || strings.HasPrefix(a, "--token=") || a == "--ca-cert" || strings.HasPrefix(a, "--ca-cert=") {
			return args
		}
		if a == "--address" && i+1 < len(args) {
			addr = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--address="); ok {
			addr = v
		}
	}
	if v, ok := creds.Load(addr); ok {
		return append(append([]string{}, v.([]string)...), args...)
	}
	return args
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	// Nothing listens here: usage errors must be found before any request.
	addr := []string{"--address", "127.0.0.1:1"}
	for _, args := range [][]string{
		{"members", "--bogus"},
		{"--bogus", "members"},
		{"nosuchcommand"},
		{"members", "extra"},
		{"members", "-o", "xml"},
		{"-o", "xml", "members"},
		{"operator", "raft", "peers", "--output=xml"},
		{"status", "-o", "xml"},
		{"kv"},
		{"kv", "bogus"},
		{"operator"},
		{"operator", "raft"},
		{"kv", "get"},
		{"kv", "get", "a", "b"},
		{"kv", "get", "-o", "xml", "a"},
		{"kv", "put", "a"},
		{"kv", "put", "--cas", "x", "a", "b"},
		{"kv", "del"},
		{"kv", "ls", "a", "b"},
		{"kv", "watch"},
		{"kv", "watch", "--count", "-1", "a"},
		{"lock", "prefix"},
		{"lock", "--", "sh", "-c", "true"},
		{"lock", "a", "b", "--", "true"},
		{"lock", "--ttl", "10ms", "a", "--", "true"},
		{"lock", "/", "--", "true"},
		{"--address", "ftp://nowhere", "members"},
	} {
		r := herd(t, append(append([]string{}, addr...), args...)...)
		if r.code != 2 {
			t.Errorf("herd %q: exit %d, want 2 (stderr: %s)", args, r.code, r.stderr)
			continue
		}
		if !strings.Contains(r.stderr, "Error: ") || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("herd %q: stderr lacks the error and usage:\n%s", args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("herd %q: wrote to stdout: %q", args, r.stdout)
		}
	}
}

func TestServerErrorExitsOne(t *testing.T) {
	t.Parallel()
	r := herd(t, "--address", "127.0.0.1:1", "members")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "Error: ", "connection refused")
	if strings.Contains(r.stderr, "Usage:") {
		t.Fatalf("a server error printed usage:\n%s", r.stderr)
	}
}

func TestHelpListsClientCommands(t *testing.T) {
	t.Parallel()
	r := herd(t, "--help")
	wantCode(t, r, 0)
	wantContains(t, "help", r.stdout, "members", "operator", "kv", "lock", "status", "--address",
		"apply", "service", "ps", "scale", "logs", "node")
	for _, args := range [][]string{{"kv", "put", "--help"}, {"lock", "--help"}, {"kv", "watch", "--help"},
		{"apply", "--help"}, {"ps", "--help"}, {"scale", "--help"}, {"logs", "--help"}, {"node", "--help"},
		{"node", "ls", "--help"}, {"node", "show", "--help"}, {"node", "drain", "--help"}, {"node", "eligibility", "--help"}} {
		r := herd(t, args...)
		wantCode(t, r, 0)
		wantContains(t, "help", r.stdout, "Example")
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	c := startCluster(t, 1)
	t.Setenv("HERD_ADDR", c.Nodes[0].Agent().APIAddr())
	r := herd(t, "members")
	wantCode(t, r, 0)
	wantContains(t, "members", r.stdout, "server1")
}

func TestKVRoundTrip(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	n := c.Nodes[0]

	r := cli(t, n, "kv", "put", "app/port", "8080")
	wantCode(t, r, 0)
	if r.stdout != "Success! Data written to: app/port\n" {
		t.Fatalf("put printed %q", r.stdout)
	}
	wantCode(t, cli(t, n, "kv", "put", "--flags", "7", "app/db/host", "db1"), 0)
	r = herdIn(t, strings.NewReader("line1\nline2\n"), "--address", n.Agent().APIAddr(), "kv", "put", "app/motd", "-")
	wantCode(t, r, 0)

	r = cli(t, n, "kv", "get", "app/port")
	wantCode(t, r, 0)
	if r.stdout != "8080\n" {
		t.Fatalf("get printed %q, want %q", r.stdout, "8080\n")
	}
	r = cli(t, n, "kv", "get", "app/motd")
	wantCode(t, r, 0)
	if r.stdout != "line1\nline2\n\n" {
		t.Fatalf("get of a value read from stdin printed %q", r.stdout)
	}

	r = cli(t, n, "kv", "get", "-o", "json", "app/db/host")
	wantCode(t, r, 0)
	pair := decodeJSON[api.KVPair](t, r.stdout)
	if pair.Key != "app/db/host" || string(pair.Value) != "db1" || pair.Flags != 7 || pair.ModifyIndex == 0 {
		t.Fatalf("get -o json: %+v", pair)
	}

	r = cli(t, n, "kv", "get", "--detailed", "app/db/host")
	wantCode(t, r, 0)
	fields := map[string]string{}
	for _, row := range tableRows(r.stdout) {
		if len(row) == 2 {
			fields[row[0]] = row[1]
		}
	}
	if fields["Key"] != "app/db/host" || fields["Value"] != "db1" || fields["Flags"] != "7" || fields["Session"] != "-" {
		t.Fatalf("get --detailed: %v", fields)
	}

	r = cli(t, n, "kv", "ls")
	wantCode(t, r, 0)
	if r.stdout != "app/\n" {
		t.Fatalf("ls printed %q, want the folded app/", r.stdout)
	}
	r = cli(t, n, "kv", "ls", "app/")
	wantCode(t, r, 0)
	if r.stdout != "app/db/\napp/motd\napp/port\n" {
		t.Fatalf("ls app/ printed %q", r.stdout)
	}
	r = cli(t, n, "kv", "ls", "-o", "json", "app/")
	wantCode(t, r, 0)
	if keys := decodeJSON[[]string](t, r.stdout); strings.Join(keys, ",") != "app/db/,app/motd,app/port" {
		t.Fatalf("ls -o json: %q", keys)
	}

	r = cli(t, n, "kv", "ls", "--recurse", "app/")
	wantCode(t, r, 0)
	rows := tableRows(r.stdout)
	if len(rows) != 4 || strings.Join(rows[0], " ") != "KEY MODIFY_INDEX FLAGS SESSION VALUE" {
		t.Fatalf("ls --recurse table:\n%s", r.stdout)
	}
	if got := strings.Join(rows[1], " "); got != "app/db/host "+rows[1][1]+" 7 - db1" {
		t.Fatalf("ls --recurse row %q", got)
	}
	if rows[2][0] != "app/motd" || rows[2][4] != "<12" { // multi-line values show their size
		t.Fatalf("ls --recurse row %q", rows[2])
	}
	r = cli(t, n, "kv", "ls", "--recurse", "-o", "json", "app/")
	wantCode(t, r, 0)
	pairs := decodeJSON[[]api.KVPair](t, r.stdout)
	if len(pairs) != 3 || pairs[2].Key != "app/port" || string(pairs[2].Value) != "8080" {
		t.Fatalf("ls --recurse -o json: %+v", pairs)
	}

	r = cli(t, n, "kv", "del", "app/port")
	wantCode(t, r, 0)
	wantContains(t, "del", r.stdout, "Deleted key: app/port")
	r = cli(t, n, "kv", "get", "app/port")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "key not found: app/port")
	if r.stdout != "" {
		t.Fatalf("get of a missing key printed %q", r.stdout)
	}

	r = cli(t, n, "kv", "del", "--recurse", "app/")
	wantCode(t, r, 0)
	r = cli(t, n, "kv", "ls", "--recurse", "-o", "json")
	wantCode(t, r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("after del --recurse, ls printed %q", r.stdout)
	}
	r = cli(t, n, "kv", "ls")
	wantCode(t, r, 0)
	if r.stdout != "" {
		t.Fatalf("ls of an empty store printed %q", r.stdout)
	}
}

func TestKVCAS(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	n := c.Nodes[0]

	wantCode(t, cli(t, n, "kv", "put", "--cas", "0", "owner", "alice"), 0)
	r := cli(t, n, "kv", "put", "--cas", "0", "owner", "bob")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "CAS failed", "already exists")
	if r.stdout != "" {
		t.Fatalf("failed CAS printed %q", r.stdout)
	}

	pair := decodeJSON[api.KVPair](t, cli(t, n, "kv", "get", "-o", "json", "owner").stdout)
	stale := pair.ModifyIndex
	wantCode(t, cli(t, n, "kv", "put", "--cas", itoa(stale), "owner", "carol"), 0)
	r = cli(t, n, "kv", "put", "--cas", itoa(stale), "owner", "dave")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "CAS failed", "ModifyIndex is no longer "+itoa(stale))
	if r := cli(t, n, "kv", "get", "owner"); r.stdout != "carol\n" {
		t.Fatalf("after the failed CAS the value is %q", r.stdout)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestMembersAndRaftPeers(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	n := c.Nodes[1]
	leader := c.WaitLeader(15 * time.Second)
	c.WaitFor(15*time.Second, "every member alive in node 2's view", func() bool {
		members, err := n.Client(t).Members(testcluster.Ctx(t, 5*time.Second))
		return err == nil && len(members) == 3
	})

	r := cli(t, n, "members")
	wantCode(t, r, 0)
	rows := tableRows(r.stdout)
	if strings.Join(rows[0], " ") != "NAME STATUS ROLE ZONE ADDRESS API VERSION" || len(rows) != 4 {
		t.Fatalf("members table:\n%s", r.stdout)
	}
	for i, row := range rows[1:] {
		node := c.Nodes[i]
		want := []string{node.Name, "alive", "server", "-", node.Agent().GossipAddr(), node.Agent().APIAddr()}
		if strings.Join(row[:6], " ") != strings.Join(want, " ") {
			t.Fatalf("members row %d: %q, want %q", i, row, want)
		}
	}
	r = cli(t, n, "members", "-o", "json")
	wantCode(t, r, 0)
	members := decodeJSON[[]api.Member](t, r.stdout)
	if len(members) != 3 || members[0].Name != "server1" || members[2].Role != "server" {
		t.Fatalf("members -o json: %+v", members)
	}

	r = cli(t, n, "operator", "raft", "peers")
	wantCode(t, r, 0)
	rows = tableRows(r.stdout)
	if strings.Join(rows[0], " ") != "NODE ADDRESS LEADER VOTER" || len(rows) != 4 {
		t.Fatalf("raft peers table:\n%s", r.stdout)
	}
	leaders := 0
	for _, row := range rows[1:] {
		if row[2] == "true" {
			leaders++
			if row[0] != leader.Name {
				t.Fatalf("raft peers shows %s leading, want %s", row[0], leader.Name)
			}
		}
		if row[3] != "true" {
			t.Fatalf("raft peers: %s is not a voter", row[0])
		}
	}
	if leaders != 1 {
		t.Fatalf("raft peers shows %d leaders", leaders)
	}
	r = cli(t, n, "operator", "raft", "peers", "-o", "json")
	wantCode(t, r, 0)
	cfg := decodeJSON[api.RaftConfiguration](t, r.stdout)
	if len(cfg.Servers) != 3 {
		t.Fatalf("raft peers -o json: %+v", cfg)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	n := c.Nodes[0]
	c.WaitFor(10*time.Second, "the node to register", func() bool {
		nodes, _, err := n.Client(t).Nodes(context.Background(), nil)
		return err == nil && len(nodes) == 1 && nodes[0].Status == "ready"
	})
	r := cli(t, n, "status")
	wantCode(t, r, 0)
	wantContains(t, "status", r.stdout,
		"Agent:", "server1 (server)",
		"Leader:", "Raft peers:", "1 (1 voters)",
		"Members:", "1 alive, 0 failed, 0 left",
		"Cluster ID:", n.Agent().Server().Store().ClusterID(),
		"commit_index=", "applied_index=",
		"Nodes:", "1 ready, 0 down", "Replicas:", "0 running (0 healthy) of 0",
		"Services:", "Recent:", "token.created")
	for _, row := range tableRows(r.stdout) {
		if row[0] == "Leader:" && row[1] != "server1" {
			t.Fatalf("status shows leader %q", row[1])
		}
	}
	r = cli(t, n, "status", "-o", "json")
	wantCode(t, r, 0)
	st := decodeJSON[clusterStatus](t, r.stdout)
	if st.Self == nil || st.Self.Leader != "server1" || st.Raft == nil || len(st.Members) != 1 || len(st.Nodes) != 1 || len(st.Events) == 0 {
		t.Fatalf("status -o json: %+v", st)
	}
}

func TestStatusOnClientAgent(t *testing.T) {
	t.Parallel()
	c := start(t, testcluster.Options{Servers: 1, Clients: 1})
	client := c.Node("client1")
	c.WaitFor(15*time.Second, "the client to see the server", func() bool {
		members, err := client.Client(t).Members(testcluster.Ctx(t, 5*time.Second))
		return err == nil && len(members) == 2
	})
	r := cli(t, client, "status")
	wantCode(t, r, 0)
	wantContains(t, "status", r.stdout, "client1 (client)", "Leader:      server1", "2 alive")
}

func TestRunWritesToGivenStreams(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"kv", "get"}, &out, &errOut); code != 2 {
		t.Fatalf("run: exit %d, want 2", code)
	}
	wantContains(t, "stderr", errOut.String(), "Error: accepts 1 arg(s), received 0", "Usage:\n  herd kv get KEY")
	out.Reset()
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Fatalf("run --help: exit %d, stdout %q", code, out.String())
	}
}

// Keys with "..", "." or empty segments are stored as written, never
// rewritten into other keys.
func TestKVOddKeysAreLiteral(t *testing.T) {
	c := startCluster(t, 1)
	n := c.Nodes[0]
	wantCode(t, cli(t, n, "kv", "put", "important", "keep"), 0)
	wantCode(t, cli(t, n, "kv", "put", "tmp/../important", "other"), 0)
	wantCode(t, cli(t, n, "kv", "put", "a//b", "ab"), 0)
	wantCode(t, cli(t, n, "kv", "del", "junk/../important"), 0)
	r := cli(t, n, "kv", "get", "important")
	wantCode(t, r, 0)
	wantContains(t, "stdout", r.stdout, "keep")
	r = cli(t, n, "kv", "get", "tmp/../important")
	wantCode(t, r, 0)
	wantContains(t, "stdout", r.stdout, "other")
	r = cli(t, n, "kv", "get", "a//b")
	wantCode(t, r, 0)
	wantContains(t, "stdout", r.stdout, "ab")
}
