package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/tmptree"
)

// tempFile is a file being written in the directory of its final name. Where
// the file system supports O_TMPFILE it has no name at all until commit, so
// that even a SIGKILL leaves nothing behind; elsewhere it has a hidden name
// that discard removes, and that the next build removes (SweepStale) if a
// SIGKILL left it: it is locked while in use (tmptree.LockFile), as is the
// hidden name commit links it to before renaming it over its destination.
type tempFile struct {
	f     *os.File
	named string // "" for an anonymous (O_TMPFILE) file
}

// newTempFile makes a temporary file with mode perm (less the umask) in dir.
// base is used to name the fallback file.
func newTempFile(dir, base string, perm os.FileMode) (*tempFile, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm))
	if err == nil {
		t := &tempFile{f: os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed "+base+")"))}
		if err := tmptree.LockFile(t.f); err != nil {
			t.discard()
			return nil, fmt.Errorf("locking a temporary file in %s: %w", dir, err)
		}
		return t, nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	for try := 0; ; try++ {
		name := filepath.Join(dir, hiddenName(base))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
		}
		t := &tempFile{f: f, named: name}
		if err := tmptree.LockFile(f); err != nil {
			t.discard()
			return nil, fmt.Errorf("locking temporary file %s: %w", name, err)
		}
		if tmptree.SameFile(f, name) {
			return t, nil
		}
		f.Close() // another launch's sweep removed it before it was locked
		if try == 4 {
			return nil, fmt.Errorf("creating a temporary file in %s: removed as it was made, five times", dir)
		}
	}
}

// hiddenName is a unique hidden temporary name for base.
func hiddenName(base string) string { return tmptree.Name(tmptree.Hidden(base)) }

// procPath is a path by which this process reaches the file.
func (t *tempFile) procPath() string {
	if t.named != "" {
		return t.named
	}
	return "/proc/self/fd/" + strconv.Itoa(int(t.f.Fd()))
}

// discard closes and removes the file. It is safe to call after commit.
func (t *tempFile) discard() {
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
	if t.named != "" {
		_ = os.Remove(t.named)
		t.named = ""
	}
}

// errExists is returned by commit when dst exists and replacing was not asked.
var errExists = errors.New("already exists")

// commit gives the file the name dst. Without replace it fails with
// errExists when dst exists, atomically; with replace it renames over dst.
func (t *tempFile) commit(dst string, replace bool) error {
	if err := t.f.Sync(); err != nil {
		return err
	}
	src := t.procPath()
	flags := 0
	if t.named == "" {
		flags = unix.AT_SYMLINK_FOLLOW
	}
	target := dst
	if replace {
		target = filepath.Join(filepath.Dir(dst), hiddenName(filepath.Base(dst)))
	}
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, target, flags); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return errExists
		}
		return err
	}
	if replace {
		if err := os.Rename(target, dst); err != nil {
			_ = os.Remove(target)
			return err
		}
	}
	t.discard() // drops the temporary name, if any; dst stays
	return nil
}
