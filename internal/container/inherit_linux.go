package container

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// inherited are the descriptors above standard error that the caller of
// launch left open (a Slurm or MPI launcher's PMI socket, a shell's
// `exec 5>file`, a parent's pipes). The payload gets them at the same
// numbers, as Apptainer passes them; nothing else that launch starts does
// — a FUSE server holding a caller's pipe would keep the reader waiting
// for as long as the server runs (a sharing holder's: long after its
// payload is gone) — and the stage closes them once the payload has them.
type inherited []int

// takeInherited finds the inherited descriptors of this process and marks
// them close-on-exec. They are the open descriptors above 2 without
// close-on-exec: execve closed every other one the caller had, and launch
// opens all of its own with it (the Go runtime, package os, the
// constructor's socket; StageMain sets it on its pipe first).
func takeInherited() (inherited, error) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("listing inherited descriptors: %w", err)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close() // before the loop: its own descriptor has close-on-exec, but is gone after this
	if err != nil {
		return nil, fmt.Errorf("listing inherited descriptors: %w", err)
	}
	var in inherited
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // closed since the listing (dir's own), or launch's
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
			return nil, fmt.Errorf("marking inherited descriptor %d close-on-exec: %w", fd, err)
		}
		in = append(in, fd)
	}
	return in, nil
}

// files is the payload's syscall.ProcAttr.Files: standard input, output
// and error, and each inherited descriptor at its own number (the others
// up to the highest are closed in the child; they have close-on-exec).
func (in inherited) files() []uintptr {
	n := 3
	for _, fd := range in {
		n = max(n, fd+1)
	}
	files := make([]uintptr, n)
	for i := range files {
		files[i] = ^uintptr(0) // closed in the child
	}
	files[0], files[1], files[2] = 0, 1, 2
	for _, fd := range in {
		files[fd] = uintptr(fd)
	}
	return files
}

// close closes the inherited descriptors in this process.
func (in inherited) close() {
	for _, fd := range in {
		_ = unix.Close(fd)
	}
}
