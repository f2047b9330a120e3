//go:build !cgo || !linux

package preinit

import (
	"os/signal"
	"syscall"
)

// IgnoredAtStart returns the signals that were ignored (SIG_IGN) when this
// process started, as far as the Go runtime tells: without the constructor
// that is only SIGHUP and SIGINT, the ones it leaves ignored.
func IgnoredAtStart() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= maxSignal; s++ {
		if signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// Get reports that nothing was done: without cgo there is no constructor.
func Get() Result {
	return Result{Err: ErrNotTried}
}
