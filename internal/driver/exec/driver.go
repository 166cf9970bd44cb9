package exec

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/herd-cluster/herd/internal/driver"
)

// Name is the driver's name in a run spec.
const Name = "exec"

// Names of a replica's output files in its log directory.
const (
	StdoutFile = "stdout.log"
	StderrFile = "stderr.log"
)

// DefaultCgroupRoot is where the cgroup v2 unified hierarchy is mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// Config configures a Driver.
type Config struct {
	// CgroupRoot is the mount point of the cgroup v2 unified hierarchy;
	// replicas' cgroups are created under "<CgroupRoot>/herd". Empty means
	// DefaultCgroupRoot.
	CgroupRoot string
	// Logger receives the driver's events (whether limits are enforced,
	// clean-up failures). Nil means slog.Default().
	Logger *slog.Logger
}

// Driver runs replicas as processes. It is safe for concurrent use.
type Driver struct {
	cgroupRoot string
	log        *slog.Logger

	// cgOnce guards the probe of cgroup v2 support, done at the first
	// start; cgErr is why limits cannot be enforced, nil if they can.
	cgOnce sync.Once
	cgErr  error
}

var _ driver.Driver = (*Driver)(nil)

// New returns an exec driver.
func New(cfg Config) *Driver {
	d := &Driver{cgroupRoot: cfg.CgroupRoot, log: cfg.Logger}
	if d.cgroupRoot == "" {
		d.cgroupRoot = DefaultCgroupRoot
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	return d
}

// Name returns "exec".
func (d *Driver) Name() string { return Name }

// Logs returns driver.ErrNoLogs: a replica's output is in the files
// "stdout.log" and "stderr.log" of its log directory, which the caller
// reads with package logfile.
func (d *Driver) Logs(ctx context.Context, t driver.Task, state []byte, follow bool) (io.ReadCloser, error) {
	return nil, driver.ErrNoLogs
}
