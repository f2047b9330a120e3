//go:build cgo

package preinit

/*
extern int launch_preinit_state;
extern int launch_preinit_errno;
extern const char *launch_preinit_step;
extern int launch_preinit_fd;
*/
import "C"

import (
	"fmt"
	"syscall"
)

// The states of preinit_linux.c.
const (
	stateNone   = 0
	stateDone   = 1
	stateFailed = 2
	stateBroken = 3
)

// Get returns what the constructor did. It reads values written once,
// before the Go runtime started.
func Get() Result {
	r := Result{FD: int(C.launch_preinit_fd)}
	switch int(C.launch_preinit_state) {
	case stateNone:
		r.Err = ErrNotTried
	case stateDone:
		r.Done = true
	case stateFailed, stateBroken:
		r.Broken = int(C.launch_preinit_state) == stateBroken
		r.Err = fmt.Errorf("%s: %w", C.GoString(C.launch_preinit_step), syscall.Errno(C.launch_preinit_errno))
	}
	return r
}
