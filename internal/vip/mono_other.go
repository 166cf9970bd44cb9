//go:build !linux

package vip

import "time"

var start = time.Now()

// monoNow is a monotonic clock in nanoseconds; off Linux only this
// process's (the watchdog is Linux-only).
func monoNow() int64 { return int64(time.Since(start)) }
