// Package tmptree makes the temporary directories and files that launch's
// builds and pulls work in, and removes those that a killed launch left
// behind.
//
// Each is marked as in use by an exclusive flock(2) that its process holds
// until it removes it; the kernel drops the lock when the process dies, even
// by SIGKILL. Sweep and SweepHidden, run when a build or pull starts, remove
// the entries of a directory that have the names this package gives, were
// made on this host, belong to the caller and are not locked: never another
// user's, never those of a build still running. The host name is part of
// every name so that a sweep on one node of a cluster leaves alone the trees
// of another node on a shared file system, where a lock may be only local.
//
// Nothing here follows a symbolic link: removal works relative to directory
// file descriptors (openat O_NOFOLLOW, unlinkat).
package tmptree

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fakeroot"
)

// The kinds of temporary directories launch makes in TMPDIR.
const (
	// KindBuild is the root filesystem tree of a build or repack.
	KindBuild = "launch-build"
	// KindOCIArchive is an unpacked oci-archive.
	KindOCIArchive = "launch-oci-archive"
)

// hiddenMark marks the hidden temporary entries made beside an output.
const hiddenMark = ".launch-tmp"

// Hidden is the kind of a temporary entry made beside the output base: its
// names are hidden (".BASE.launch-tmp-HOST-…"), with BASE cut to 100 bytes
// so that a long output name still leaves room for the rest.
func Hidden(base string) string {
	if len(base) > 100 {
		base = base[:100]
	}
	return "." + base + hiddenMark
}

// hostTag is this host's part of temporary names: the first label of the
// host name, letters, digits and '-' only, at most 32 characters.
func hostTag() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	var b strings.Builder
	for _, c := range h {
		if b.Len() >= 32 {
			break
		}
		if c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "host"
	}
	return b.String()
}

// Name is a new unique name of the given kind: KIND-HOST-RANDOM.
func Name(kind string) string {
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	return kind + "-" + hostTag() + "-" + hex.EncodeToString(r)
}

// Dir is a temporary directory that this process holds locked.
type Dir struct {
	// Path is the directory.
	Path string
	lock *os.File
}

// MkdirTemp makes a new directory of the given kind in parent, mode 0700,
// and locks it. A sweep that removed it before it was locked is noticed
// (the name no longer leads to the locked directory) and a new one made.
func MkdirTemp(parent, kind string) (*Dir, error) {
	var err error
	for try := 0; try < 5; try++ {
		p := filepath.Join(parent, Name(kind))
		if err = unix.Mkdir(p, 0o700); err != nil {
			if errors.Is(err, unix.EEXIST) {
				continue
			}
			return nil, fmt.Errorf("creating a temporary directory in %s: %w", parent, err)
		}
		var f *os.File
		f, err = os.OpenFile(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			// Another launch's sweep found it unlocked and removed it.
			err = fmt.Errorf("temporary directory %s was removed as it was made", p)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("opening temporary directory %s: %w", p, err)
		}
		if err = lock(f, true); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking temporary directory %s: %w", p, err)
		}
		if sameFile(f, p) {
			return &Dir{Path: p, lock: f}, nil
		}
		f.Close() // swept before it was locked: make another
		err = fmt.Errorf("temporary directory %s was removed as it was made", p)
	}
	return nil, err
}

// Remove removes the directory and everything in it, then drops the lock.
// It may be called more than once.
func (d *Dir) Remove() error {
	if d == nil || d.lock == nil {
		return nil
	}
	defer func() { d.lock.Close(); d.lock = nil }()
	err := RemoveAll(d.Path)
	if err != nil {
		return fmt.Errorf("removing temporary directory %s: %w", d.Path, err)
	}
	return nil
}

// LockFile marks the file f, which this process made in a directory a sweep
// looks at, as in use for as long as f (or a copy of its descriptor) is
// open. File systems without locks are tolerated: a sweep cannot take their
// lock either, so it leaves the file alone.
func LockFile(f *os.File) error { return lock(f, false) }

// lock takes an exclusive flock on f, waiting for it when wait (a sweep
// holds it only while it removes an entry). Unsupported locks are not an
// error.
func lock(f *os.File, wait bool) error {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err := unix.Flock(int(f.Fd()), how)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOLCK), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return nil
		}
		return err
	}
}

// SameFile reports whether path still names the open file f: a sweep
// that ran between making an entry and locking it may have removed it.
func SameFile(f *os.File, path string) bool { return sameFile(f, path) }

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Lstat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// Sweep removes from dir the stale temporary directories of this host of
// every kind launch makes in TMPDIR (see the package comment for which are
// stale) and returns their names. It costs one read of dir and, per entry
// of a launch kind, an open, an fstat and a flock.
func Sweep(dir string) []string {
	prefixes := []string{KindBuild + "-" + hostTag() + "-", KindOCIArchive + "-" + hostTag() + "-"}
	return sweep(dir, func(name string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	})
}

// SweepHidden removes from dir the stale hidden temporary entries of this
// host that launch makes beside an output (Hidden), and returns their
// names.
func SweepHidden(dir string) []string {
	mark := hiddenMark + "-" + hostTag() + "-"
	return sweep(dir, func(name string) bool {
		return strings.HasPrefix(name, ".") && strings.Contains(name, mark)
	})
}

// sweep removes the stale entries of dir whose names match.
func sweep(dir string, match func(string) bool) []string {
	d, err := os.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var removed []string
	for _, n := range names {
		if match(n) && removeStale(int(d.Fd()), n) {
			removed = append(removed, n)
		}
	}
	return removed
}

// removeStale removes the entry name of dirfd if it is a directory or
// regular file of the caller that nobody holds locked, and reports whether
// it did.
func removeStale(dirfd int, name string) bool {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || int(st.Uid) != os.Geteuid() {
		return false
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && typ != unix.S_IFREG {
		return false
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false // in use, or no locks here: leave it
	}
	// The name must still lead to what was checked and locked.
	var now unix.Stat_t
	if unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW) != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return false
	}
	if typ == unix.S_IFREG {
		return unix.Unlinkat(dirfd, name, 0) == nil
	}
	if err := removeContents(fd); err != nil {
		// A killed --fakeroot build's tree: its directories of
		// subordinate ids are removed in the user's namespace.
		return asFakeroot(dirfd, name, err) == nil
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) == nil
}

// asFakeroot retries, after the removal of name in dirfd failed with err,
// as root in the calling user's fakeroot namespace (internal/fakeroot),
// when err says permission was refused: the tree of a --fakeroot build has
// directories of the user's subordinate ids, which the user cannot empty
// from outside. It returns err when that does not apply or fails too.
func asFakeroot(dirfd int, name string, err error) error {
	if os.Geteuid() == 0 || !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if ferr := fakeroot.RemoveAt(dirfd, name); ferr != nil {
		return fmt.Errorf("%w (%v)", err, ferr)
	}
	return nil
}

// RemoveAll removes path and, for a directory, everything below it, without
// following symbolic links, first making directories writable by their
// owner (images have read-only ones), and, where permission is refused to a
// user with subordinate id ranges, again in that user's fakeroot namespace
// (asFakeroot). A missing path is not an error.
func RemoveAll(path string) error {
	path = filepath.Clean(path)
	pfd, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := RemoveAt(pfd, filepath.Base(path)); err != nil {
		return asFakeroot(pfd, filepath.Base(path), err)
	}
	return nil
}

// RemoveAt removes name in the directory dirfd and, for a directory,
// everything below it, never following a symbolic link. A missing name is
// not an error.
func RemoveAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(oerr, unix.EACCES) {
		// A directory without permissions for its owner: it is one
		// (O_NOFOLLOW would have said ELOOP for a link), so open it up.
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR &&
			unix.Fchmodat(dirfd, name, 0o700, 0) == nil {
			fd, oerr = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
	}
	if oerr != nil {
		if errors.Is(oerr, unix.EACCES) {
			// A directory of another owner (a --fakeroot build's
			// subordinate id) that cannot be opened: say so, not
			// EISDIR, so that RemoveAll and the sweep know to retry
			// in the fakeroot namespace (asFakeroot).
			return oerr
		}
		return err
	}
	cerr := removeContents(fd)
	unix.Close(fd)
	if cerr != nil {
		return cerr
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// removeContents removes everything in the directory fd (not fd itself).
func removeContents(fd int) error {
	_ = unix.Fchmod(fd, 0o700)
	lfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(lfd), ".")
	defer d.Close()
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if err := RemoveAt(fd, n); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
