//go:build cgo

package preinit

/*
extern int launch_preinit_state;
extern int launch_preinit_errno;
extern const char *launch_preinit_step;
extern int launch_preinit_fd;
extern unsigned long long launch_preinit_ignored;
extern char launch_preinit_warm_name[96];
extern char *launch_preinit_warm_req;
extern size_t launch_preinit_warm_len;
*/
import "C"

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// IgnoredAtStart returns the signals that were ignored (SIG_IGN) when this
// process started, as the constructor found them before the Go runtime
// replaced most dispositions with its own.
func IgnoredAtStart() []syscall.Signal {
	m := uint64(C.launch_preinit_ignored)
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= maxSignal; s++ {
		if m&(1<<(s-1)) != 0 {
			out = append(out, s)
		}
	}
	return out
}

// The states of preinit_linux.c.
const (
	stateNone   = 0
	stateDone   = 1
	stateFailed = 2
	stateBroken = 3
	stateJoined = 4
)

// Get returns what the constructor did. It reads values written once,
// before the Go runtime started.
func Get() Result {
	var r Result
	if fd := int(C.launch_preinit_fd); fd >= 0 {
		r.Parent = os.NewFile(uintptr(fd), "launch-parent")
	}
	switch int(C.launch_preinit_state) {
	case stateNone:
		r.Err = ErrNotTried
	case stateDone:
		r.Done = true
	case stateJoined:
		r.Joined = true
	case stateFailed, stateBroken:
		r.Broken = int(C.launch_preinit_state) == stateBroken
		r.Err = fmt.Errorf("%s: %w", C.GoString(C.launch_preinit_step), syscall.Errno(C.launch_preinit_errno))
	}
	if r.Done && C.launch_preinit_warm_len > 0 {
		r.Warm = &WarmRequest{
			Name:    C.GoString(&C.launch_preinit_warm_name[0]),
			Request: C.GoBytes(unsafe.Pointer(C.launch_preinit_warm_req), C.int(C.launch_preinit_warm_len)),
		}
	}
	return r
}
