// Package timeline prints where the start-up time of launch goes: with
// LAUNCH_TIMELINE set in the environment, the launcher and the container
// stage write one line per milestone to stderr, stamped with the system-wide
// monotonic clock so the lines of both processes (and of a benchmark driver)
// can be merged. When the variable is unset it costs one getenv per process.
//
// A line reads:
//
//	launch-timeline: MICROSECONDS PID ROLE EVENT
//
// where MICROSECONDS is CLOCK_MONOTONIC.
//
// It must not change what it times: when the variable is unset it does nothing.
package timeline

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// EnvVar is the environment variable that turns the timeline on.
const EnvVar = "LAUNCH_TIMELINE"

// Prefix starts every timeline line.
const Prefix = "launch-timeline:"

// T writes the milestones of one process. A nil *T writes nothing.
type T struct {
	w    io.Writer
	role string
	pid  string
}

// FromEnv returns a timeline for the process playing role (launcher,
// stage), or nil when LAUNCH_TIMELINE is unset or empty.
func FromEnv(role string) *T {
	if os.Getenv(EnvVar) == "" {
		return nil
	}
	return &T{w: os.Stderr, role: role, pid: strconv.Itoa(os.Getpid())}
}

// Mark records that event happened now.
func (t *T) Mark(event string) {
	if t == nil {
		return
	}
	line := Prefix + " " + strconv.FormatInt(Now(), 10) + " " + t.pid + " " + t.role + " " + event + "\n"
	_, _ = io.WriteString(t.w, line)
}

// Now is CLOCK_MONOTONIC in microseconds, the clock of every mark.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
