// Package docker is the driver that runs a replica as a container of an
// image already present on the node, through the local Docker engine's API.
//
// The driver never pulls: herd has no registry credentials and a node
// without the image is simply told so (an error wrapping driver.ErrTask).
// Containers are named "herd-<replica ID>" and labelled with the replica
// and service, run with restart policy "no" (herd's supervisor restarts),
// and are removed on Stop. Their output stays with the engine (json-file,
// 10 MB × 3) and is read back through Logs.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/herd-cluster/herd/internal/driver"
)

// Labels set on every container herd starts.
const (
	// LabelReplica holds the replica ID; Cleanup finds herd's containers by it.
	LabelReplica = "herd.replica"
	// LabelService holds the service name.
	LabelService = "herd.service"
)

// pingTimeout bounds Available: a node without a working engine must be
// told so quickly, not after a TCP or socket timeout.
const pingTimeout = 2 * time.Second

// cleanupTimeout bounds the removal of a container that failed to start,
// done after the caller's ctx may have ended.
const cleanupTimeout = 10 * time.Second

var _ driver.Driver = (*Driver)(nil)

// Driver runs replicas as Docker containers. It is safe for concurrent use.
type Driver struct {
	cli *client.Client
	// bindIP is the host address ports are published on; invalid (the zero
	// Addr) means all addresses.
	bindIP netip.Addr
}

// Option configures a Driver in New.
type Option func(*Driver) error

// BindIP publishes the replicas' ports on the host address ip only. The
// default, and the empty string, is all host addresses, which a cluster
// needs (gateways on other nodes connect to the replicas); tests use
// "127.0.0.1".
func BindIP(ip string) Option {
	return func(d *Driver) error {
		if ip == "" {
			d.bindIP = netip.Addr{}
			return nil
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("docker: bind IP: %w", err)
		}
		d.bindIP = a
		return nil
	}
}

// New returns a driver for the engine at host ("unix:///var/run/docker.sock",
// "tcp://10.0.0.5:2375"); an empty host means $DOCKER_HOST or the platform's
// default socket. The API version is negotiated with the engine on first
// use. New does not contact the engine: see Available. Close releases the
// client's connections.
func New(host string, opts ...Option) (*Driver, error) {
	copts := []client.Opt{client.FromEnv}
	if host != "" {
		copts = append(copts, client.WithHost(host))
	}
	cli, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client for %q: %w", host, err)
	}
	d := &Driver{cli: cli}
	for _, o := range opts {
		if err := o(d); err != nil {
			_ = cli.Close()
			return nil, err
		}
	}
	return d, nil
}

// Close closes the client's idle connections. Handles of the driver must
// not be used afterwards.
func (d *Driver) Close() error {
	if err := d.cli.Close(); err != nil {
		return fmt.Errorf("docker: close client: %w", err)
	}
	return nil
}

// Host is the engine address the driver talks to.
func (d *Driver) Host() string { return d.cli.DaemonHost() }

// Name returns "docker".
func (d *Driver) Name() string { return "docker" }

// Available pings the engine (at most 2 s, less if ctx ends earlier) and
// negotiates the API version. It returns nil when the engine answers, else
// an error naming the address it tried.
func (d *Driver) Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker: no engine at %s: %w", d.Host(), err)
	}
	return nil
}

// Start creates and starts the task's container from its local image. A
// missing image, or a container the engine refuses as invalid (command not
// found, limits too small), is an error wrapping driver.ErrTask. A
// container left over with the same name is removed first.
func (d *Driver) Start(ctx context.Context, t driver.Task) (driver.Handle, error) {
	name := containerName(t.ID)
	if t.Image == "" {
		return nil, fmt.Errorf("docker: replica %s: no image: %w", t.ID, driver.ErrTask)
	}
	if _, err := d.cli.ImageInspect(ctx, t.Image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("docker: image %q not found on this node: %w", t.Image, driver.ErrTask)
		}
		return nil, fmt.Errorf("docker: inspect image %q: %w", t.Image, err)
	}
	cfg, hcfg, err := containerConfig(t, d.bindIP)
	if err != nil {
		return nil, fmt.Errorf("docker: replica %s: %w", t.ID, err)
	}
	if err := d.remove(ctx, name); err != nil {
		return nil, fmt.Errorf("docker: remove left-over container %s: %w", name, err)
	}
	created, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     cfg,
		HostConfig: hcfg,
	})
	if err != nil {
		return nil, taskError(fmt.Errorf("docker: create container %s: %w", name, err))
	}
	if _, err := d.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		// Do not leave a created container behind: the next Start would
		// remove it anyway, but Cleanup may not run for a long time.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		rerr := d.remove(rctx, created.ID)
		err = taskError(fmt.Errorf("docker: start container %s: %w", name, err))
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("docker: remove container %s: %w", name, rerr))
		}
		return nil, err
	}
	pid := 0
	if info, err := d.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err == nil && info.Container.State != nil {
		pid = info.Container.State.Pid
	}
	return d.handle(t, created.ID, pid), nil
}

// taskError marks err as driver.ErrTask when the engine rejected the
// container as invalid (400: bad limits, executable not found, ...), which
// the same start would meet again.
func taskError(err error) error {
	if cerrdefs.IsInvalidArgument(err) {
		return fmt.Errorf("%w: %w", err, driver.ErrTask)
	}
	return err
}

// Recover re-attaches to the container in state. A container that no
// longer exists or no longer runs is removed and ErrGone returned.
func (d *Driver) Recover(ctx context.Context, t driver.Task, state []byte) (driver.Handle, error) {
	ref := d.ref(t, state)
	info, err := d.cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("docker: container %s: %w", ref, driver.ErrGone)
		}
		return nil, fmt.Errorf("docker: inspect container %s: %w", ref, err)
	}
	c := info.Container
	if c.Config == nil || c.Config.Labels[LabelReplica] != t.ID {
		// Not the replica's container (a damaged blob, or a name taken by
		// someone else): neither ours to adopt nor to remove.
		return nil, fmt.Errorf("docker: container %s is not replica %q's: %w", ref, t.ID, driver.ErrGone)
	}
	if c.State == nil || !c.State.Running {
		if err := d.remove(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("docker: remove stopped container %s: %w", ref, err)
		}
		return nil, fmt.Errorf("docker: container %s is not running: %w", ref, driver.ErrGone)
	}
	return d.handle(t, c.ID, c.State.Pid), nil
}

// Logs streams the container's stdout and stderr, merged into one plain
// stream, from the engine; with follow it continues until the container
// ends, ctx ends or the reader is closed. The caller must Close it.
func (d *Driver) Logs(ctx context.Context, t driver.Task, state []byte, follow bool) (io.ReadCloser, error) {
	ref := d.ref(t, state)
	ctx, cancel := context.WithCancel(ctx)
	rc, err := d.cli.ContainerLogs(ctx, ref, client.ContainerLogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Follow:     follow,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("docker: logs of container %s: %w", ref, err)
	}
	return newLogReader(rc, cancel), nil
}

// logReader demultiplexes the engine's log stream through a pipe. Its
// goroutine ends when the stream ends, ctx ends (the request is cancelled)
// or Close is called; Close waits for it.
type logReader struct {
	pr     *io.PipeReader
	body   io.ReadCloser
	cancel context.CancelFunc
	done   chan struct{}
}

func newLogReader(body io.ReadCloser, cancel context.CancelFunc) *logReader {
	pr, pw := io.Pipe()
	l := &logReader{pr: pr, body: body, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		_, err := stdcopy.StdCopy(pw, pw, body)
		_ = body.Close()
		// nil closes with io.EOF.
		_ = pw.CloseWithError(err)
	}()
	return l
}

// Read reads the merged output.
func (l *logReader) Read(p []byte) (int, error) { return l.pr.Read(p) }

// Close ends the stream and waits for the copying goroutine.
func (l *logReader) Close() error {
	l.cancel()
	_ = l.pr.Close()   // unblocks a goroutine writing to the pipe
	_ = l.body.Close() // unblocks one reading from the engine
	<-l.done
	return nil
}

// Cleanup removes the containers labelled herd.replica whose replica keep
// does not know, e.g. those of replicas that ended while the agent was
// down. It returns the replica IDs it removed; it goes on after an error
// and returns all of them joined.
func (d *Driver) Cleanup(ctx context.Context, keep func(replicaID string) bool) ([]string, error) {
	list, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelReplica),
	})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	var removed []string
	var errs []error
	for _, c := range list.Items {
		id := c.Labels[LabelReplica]
		if keep(id) {
			continue
		}
		if err := d.remove(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("docker: remove container %s of replica %q: %w", c.ID, id, err))
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// remove force-removes a container by ID or name; a missing one is fine.
func (d *Driver) remove(ctx context.Context, ref string) error {
	_, err := d.cli.ContainerRemove(ctx, ref, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// state is the blob a handle's State returns.
type state struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ref returns the container to look for: the ID in state, else (no or a
// damaged blob) the name the replica's container has.
func (d *Driver) ref(t driver.Task, blob []byte) string {
	var s state
	if err := json.Unmarshal(blob, &s); err == nil && s.ID != "" {
		return s.ID
	}
	return containerName(t.ID)
}

// containerName is the name of a replica's container.
func containerName(replicaID string) string { return "herd-" + replicaID }
