//go:build !linux

package exec

import (
	"context"
	"errors"

	"github.com/herd-cluster/herd/internal/driver"
)

var errNotLinux = errors.New("exec driver: runs on Linux only")

// Available returns an error: the driver needs Linux.
func (d *Driver) Available(ctx context.Context) error { return errNotLinux }

// Start returns an error: the driver needs Linux.
func (d *Driver) Start(ctx context.Context, t driver.Task) (driver.Handle, error) {
	return nil, errNotLinux
}

// Recover returns an error: the driver needs Linux.
func (d *Driver) Recover(ctx context.Context, t driver.Task, state []byte) (driver.Handle, error) {
	return nil, errNotLinux
}
