package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/herd-cluster/herd/internal/driver"
)

// The test image is built once, by the first test that needs an engine,
// and removed by TestMain.
var (
	imageOnce sync.Once
	imageTag  string
	imageErr  error
	// imageBuildTime is reported with -v.
	imageBuildTime time.Duration
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imageTag != "" {
		if err := removeImage(imageTag); err != nil {
			fmt.Fprintln(os.Stderr, "remove test image:", err)
		}
	}
	if code == 0 {
		// Nothing to ignore: every test closes its driver (the client's
		// idle connections) and its HTTP client, and the goroutines the
		// docker client starts (ContainerWait's reader) end with their
		// request. goleak retries while closed connections wind down.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newDriver returns a driver publishing on 127.0.0.1, or skips the test
// when no engine answers.
func newDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New("", BindIP("127.0.0.1"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Available(t.Context()); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	return d
}

// testImage returns the tag of the echo image, building it on first use.
func testImage(t *testing.T, d *Driver) string {
	t.Helper()
	imageOnce.Do(func() {
		start := time.Now()
		tag := fmt.Sprintf("herd-test/echo:%d-%d", os.Getpid(), time.Now().UnixNano())
		imageErr = buildImage(d.cli, tag, t.TempDir())
		if imageErr == nil {
			imageTag = tag
		}
		imageBuildTime = time.Since(start)
	})
	if imageErr != nil {
		t.Fatalf("build test image: %v", imageErr)
	}
	t.Logf("test image %s (built in %v)", imageTag, imageBuildTime.Round(time.Millisecond))
	return imageTag
}

// buildImage compiles testdata/echo statically and builds a FROM scratch
// image of it with the classic builder (no registry, no BuildKit session).
func buildImage(cli *client.Client, tag, dir string) error {
	bin := filepath.Join(dir, "echo")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY echo /echo\nENTRYPOINT [\"/echo\"]\n")},
		{"echo", 0o755, binData},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	defer res.Body.Close()
	// The answer is a stream of JSON messages; a failed step is one with
	// an "error".
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("image build output: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("image build: %s", msg.Error)
		}
	}
}

func removeImage(tag string) error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	return err
}

var taskSeq atomic.Int64

// newTask returns a task of the echo image serving on a free host port
// that maps to container port 8080, with $PORT set as herd does. The
// container is force-removed when the test ends, whatever happened.
func newTask(t *testing.T, d *Driver) driver.Task {
	t.Helper()
	img := testImage(t, d)
	id := fmt.Sprintf("test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6, taskSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.remove(ctx, containerName(id)); err != nil {
			t.Errorf("remove container of %s: %v", id, err)
		}
	})
	return driver.Task{
		ID:             id,
		Service:        "echo",
		Image:          img,
		Env:            map[string]string{"PORT": "8080", "HERD_REPLICA_ID": id},
		Ports:          map[string]int{"http": freePort(t)},
		ContainerPorts: map[string]int{"http": 8080},
		StopSignal:     syscall.SIGTERM,
		KillTimeout:    5 * time.Second,
		CPU:            250,
		MemoryMB:       32,
	}
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpc is the tests' HTTP client: no keep-alive, so no idle connections
// (and their goroutines) outlive a request.
var httpc = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// get GETs path from the task's http port and returns status and body.
func get(t *testing.T, task driver.Task, path string) (int, string, error) {
	t.Helper()
	resp, err := httpc.Get(fmt.Sprintf("http://127.0.0.1:%d%s", task.Ports["http"], path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustGet is get that fails the test on an error or a status other than 200.
func mustGet(t *testing.T, task driver.Task, path string) string {
	t.Helper()
	code, body, err := get(t, task, path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v", path, code, body, err)
	}
	return body
}

// waitHealthy polls /health until it answers 200 or 10 s have passed, and
// returns how long it took.
func waitHealthy(t *testing.T, task driver.Task) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	for {
		code, body, err := get(t, task, "/health")
		if err == nil && code == http.StatusOK && body == "ok" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not healthy after 10s: %d %q %v", task.ID, code, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exists reports whether the container ref exists.
func exists(t *testing.T, d *Driver, ref string) bool {
	t.Helper()
	_, err := d.cli.ContainerInspect(t.Context(), ref, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return true
}

// start starts task and waits until it serves.
func start(t *testing.T, d *Driver, task driver.Task) driver.Handle {
	t.Helper()
	begin := time.Now()
	h, err := d.Start(t.Context(), task)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	started := time.Since(begin)
	healthy := waitHealthy(t, task)
	t.Logf("Start took %v, healthy %v later", started.Round(time.Millisecond), healthy.Round(time.Millisecond))
	return h
}

// stateID returns the container ID in a handle's state blob.
func stateID(t *testing.T, h driver.Handle) string {
	t.Helper()
	var s state
	if err := json.Unmarshal(h.State(), &s); err != nil || s.ID == "" {
		t.Fatalf("state %q: %v", h.State(), err)
	}
	return s.ID
}

// contains fails the test unless s contains every one of subs.
func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s = %q, want it to contain %q", what, s, sub)
		}
	}
}
