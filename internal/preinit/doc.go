// Package preinit reports what launch did before the Go runtime started.
//
// For `launch exec`, `run` and `shell`, a C constructor (preinit_linux.c,
// built when cgo is on) forks while the process is still single-threaded: the
// parent stays outside as a small waiter that passes signals on and exits
// with the payload's status; the child enters new user and mount namespaces
// and goes on to become the Go program. That saves the second process start
// and Go runtime start that re-executing launch inside the namespaces would
// cost on every launch. Without cgo, or when it did not apply, Get reports
// nothing done and launch re-executes itself as before.
//
// LAUNCH_PREINIT=0 in the environment turns it off (for debugging and for
// testing the re-executing path).
//
// For every command line the constructor also opens /dev/null on standard
// descriptors the caller left closed, and records the signals the caller
// ignores (IgnoredAtStart), which the Go runtime's start would hide.
//
// For a command line that a lingering launch already ran (the same
// request: arguments, environment, working directory, user, cgroups, launch
// binary), the constructor joins that launch's container instead and never
// starts Go (warm_linux.c; internal/warmroot is the other side): the holder
// decides whether its container may be joined, the constructor checks that
// no host file it was made from changed, and runs the payload. Otherwise
// Result.Warm carries the request, for the Go side to serve its own
// container under.
//
// It must not decide anything about the container: it reports, or follows
// a holder's answer.
package preinit

import (
	"errors"
	"os"
)

// maxSignal is the highest signal number Linux has.
const maxSignal = 64

// Result is what happened before the Go runtime started.
type Result struct {
	// Done: this process is in its own user and mount namespaces, its uid
	// and gid mapped to themselves.
	Done bool
	// Joined: this process was started as JoinArg's command line and
	// has entered the namespaces of an instance's init.
	Joined bool
	// Broken: the user namespace was made but its uid or gid map could not
	// be written; the process cannot leave it, so nothing can be run.
	Broken bool
	// Err says which step failed (Broken, or a failure after which the
	// caller may fall back to re-executing itself).
	Err error
	// Parent is this process's end of the socket to the waiting parent
	// (nil when there is no parent): end-of-file on it means the parent is
	// gone; writing one byte, an exit status, lets the parent exit with it.
	// Get makes it once; the Result is the one record of the handshake
	// (internal/container takes it as it is).
	Parent *os.File
	// Warm, when set, is the request that names this launch for a warm
	// container (internal/warmroot): the constructor asked for one under
	// that name and found none, and this launch may serve its own
	// container under it once it holds its image mount.
	Warm *WarmRequest
}

// WarmRequest is how the constructor asked for a warm container: the
// abstract socket name (without the leading NUL) and the request's bytes,
// which a holder compares with a later launch's byte for byte.
type WarmRequest struct {
	Name    string
	Request []byte
}

// JoinArg is the hidden first argument of a launch that joins an
// instance: launch JoinArg PIDFD FLAGS CFGFD ... The constructor enters
// the namespaces FLAGS (CLONE_NEW* bits) of the process that the pidfd
// PIDFD holds, before the Go runtime starts (internal/container,
// join_linux.go, makes the command line and runs the rest).
const JoinArg = "__launch_join"

// ErrNotTried is Result.Err when the constructor did not run for this
// command line (or cgo is off).
var ErrNotTried = errors.New("not tried")
