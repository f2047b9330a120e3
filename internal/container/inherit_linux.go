package container

import (
	"fmt"
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
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listing inherited descriptors: %w", err)
	}
	defer unix.Close(dir)
	var in inherited
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil {
			return nil, fmt.Errorf("listing inherited descriptors: %w", err)
		}
		if n <= 0 {
			return in, nil
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd < 3 || fd == dir {
				continue
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC != 0 {
				continue // closed since, or launch's own
			}
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
				return nil, fmt.Errorf("marking inherited descriptor %d close-on-exec: %w", fd, err)
			}
			in = append(in, fd)
		}
	}
}

// pass clears close-on-exec on the inherited descriptors again, for the
// payload forked next (the only process the stage starts after the FUSE
// servers); close closes them once it is started. Passing them this way
// costs one call per descriptor, whatever its number.
func (in inherited) pass() error {
	for _, fd := range in {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("passing inherited descriptor %d to the payload: %w", fd, err)
		}
	}
	return nil
}

// close closes the inherited descriptors in this process.
func (in inherited) close() {
	for _, fd := range in {
		_ = unix.Close(fd)
	}
}
