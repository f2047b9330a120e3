package container

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTakeInherited: a descriptor without close-on-exec (as a caller
// leaves them) is found and marked close-on-exec; one with it (as launch
// opens its own) is not taken.
func TestTakeInherited(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	in, err := takeInherited()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(in, p[1]) || slices.Contains(in, p[0]) {
		t.Errorf("takeInherited = %v, want %d (inherited) and not %d (close-on-exec)", in, p[1], p[0])
	}
	if flags, err := unix.FcntlInt(uintptr(p[1]), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("inherited descriptor's flags %#x (%v), want close-on-exec", flags, err)
	}
}

// TestInheritedPass: pass clears close-on-exec again (for the payload), and
// close closes them.
func TestInheritedPass(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	in := inherited{p[0], p[1]}
	if err := in.pass(); err != nil {
		t.Fatal(err)
	}
	for _, fd := range in {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
			t.Errorf("descriptor %d after pass: flags %#x (%v), want no close-on-exec", fd, flags, err)
		}
	}
	in.close()
	for _, fd := range in {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("descriptor %d after close: %v, want EBADF", fd, err)
		}
	}
}
