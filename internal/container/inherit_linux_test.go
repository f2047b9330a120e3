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

func TestInheritedFiles(t *testing.T) {
	const closed = ^uintptr(0)
	for _, tc := range []struct {
		in   inherited
		want []uintptr
	}{
		{nil, []uintptr{0, 1, 2}},
		{inherited{3}, []uintptr{0, 1, 2, 3}},
		{inherited{5, 7}, []uintptr{0, 1, 2, closed, closed, 5, closed, 7}},
	} {
		if got := tc.in.files(); !slices.Equal(got, tc.want) {
			t.Errorf("%v.files() = %v, want %v", tc.in, got, tc.want)
		}
	}
}
