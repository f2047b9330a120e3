package build

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// dropped counts what dropPrivileged took away.
type dropped struct {
	setid   int // files and directories whose set-uid/set-gid bits were cleared
	devices int // device nodes removed
}

// dropPrivileged clears every set-uid and set-gid bit in the tree root and
// removes its device nodes: an image is anybody's, and unpacked by root it
// would otherwise give a set-uid-root shell or a world-writable disk to
// whoever made it (unpacked by a user, a set-uid shell of that user). root
// must be inside a directory only this user can enter (Sandbox's temporary
// directory), so nobody can reach the files before they are fixed.
// Symbolic links are never followed: every step is relative to the open
// parent directory.
func dropPrivileged(root string) (dropped, error) {
	var d dropped
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return d, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return d, err
	}
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		if err := unix.Fchmod(fd, st.Mode&0o1777); err != nil {
			unix.Close(fd)
			return d, err
		}
		d.setid++
	}
	err = d.walk(fd, "/")
	return d, err
}

// walk fixes the entries of the directory fd (at rel, for errors); it
// closes fd.
func (d *dropped) walk(fd int, rel string) error {
	dir := os.NewFile(uintptr(fd), rel)
	defer dir.Close()
	for {
		names, err := dir.Readdirnames(1024)
		for _, n := range names {
			if err := d.entry(fd, n, rel+n); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
	}
}

// entry fixes name in the directory dirfd, and what is below it.
func (d *dropped) entry(dirfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("checking %s: %w", rel, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return fmt.Errorf("removing device node %s: %w", rel, err)
		}
		d.devices++
		return nil
	case unix.S_IFREG:
		if st.Mode&(unix.S_ISUID|unix.S_ISGID) == 0 {
			return nil
		}
		// A regular file (just checked, without following it) in a tree
		// nobody else can reach: fchmodat on its name is safe.
		if err := unix.Fchmodat(dirfd, name, st.Mode&0o1777, 0); err != nil {
			return fmt.Errorf("clearing set-uid/set-gid bits of %s: %w", rel, err)
		}
		d.setid++
		return nil
	case unix.S_IFDIR:
	default:
		return nil
	}
	mode := st.Mode & 0o1777
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		d.setid++
	}
	// Open it without following a link; a directory its owner may not
	// enter (an unprivileged unpack keeps such modes) is opened up for the
	// walk and given its mode back after.
	open := func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := open()
	restore := false
	if errors.Is(err, unix.EACCES) {
		if err = unix.Fchmodat(dirfd, name, mode|0o700, 0); err == nil {
			restore = true
			fd, err = open()
		}
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", rel, err)
	}
	if !restore && mode != st.Mode&0o7777 {
		if err := unix.Fchmod(fd, mode); err != nil {
			unix.Close(fd)
			return fmt.Errorf("clearing set-uid/set-gid bits of %s: %w", rel, err)
		}
	}
	if err := d.walk(fd, rel+"/"); err != nil {
		return err
	}
	if restore {
		if err := unix.Fchmodat(dirfd, name, mode, 0); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", rel, err)
		}
	}
	return nil
}
