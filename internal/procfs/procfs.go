// Package procfs reads what herd needs of a process from Linux's /proc:
// its state, process group, start time and CPU time.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Root is where procfs is mounted.
const Root = "/proc"

// clockTicks is the kernel's USER_HZ, the unit of the times in
// /proc/PID/stat (100 on every Linux herd runs on).
const clockTicks = 100

// Stat is what herd reads from /proc/<pid>/stat.
type Stat struct {
	// State is field 3: R, S, D, Z, X, ...
	State byte
	// Pgrp is field 5, the process group.
	Pgrp int
	// StartTime is field 22, in clock ticks since boot; with the PID it
	// names one process even after the number is reused.
	StartTime uint64
	// CPUTicks is fields 14-17: user and system time of the process and
	// of its children it has reaped, in clock ticks.
	CPUTicks uint64
}

// Dead reports whether the process has ended and only its exit status is
// left to be reaped.
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// CPUTime is CPUTicks as a duration.
func (s Stat) CPUTime() time.Duration { return time.Duration(s.CPUTicks) * time.Second / clockTicks }

// ReadStat reads the stat line of process pid.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(Root + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses a /proc/<pid>/stat line. The command name (field 2) is
// in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("proc stat %q: no command name", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat %q: too few fields", b)
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: process group: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: start time: %w", err)
	}
	var cpu uint64
	for _, field := range f[11:15] { // fields 14-17
		n, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("proc stat: CPU time: %w", err)
		}
		cpu += n
	}
	return Stat{State: f[0][0], Pgrp: pgrp, StartTime: start, CPUTicks: cpu}, nil
}
