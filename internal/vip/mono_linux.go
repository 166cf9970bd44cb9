package vip

import "golang.org/x/sys/unix"

// monoNow is CLOCK_MONOTONIC in nanoseconds: one clock for every process
// of the machine, unaffected by wall-clock steps.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
