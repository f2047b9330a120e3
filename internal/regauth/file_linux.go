package regauth

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
)

// tempPrefix starts the names of files being written in the directory.
const tempPrefix = "." + FileName + ".tmp-"

// openDir opens the credentials file's directory (creating it, mode 0700,
// when create and it is missing), without following a link in its last
// component, and checks it is the caller's and writable by nobody else.
func openDir(dir string, create bool) (int, error) {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("registry credentials directory %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("creating %s: %w", dir, err)
		}
		fd, err = unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("registry credentials directory %s is not a directory (a symbolic link?): refusing it", dir)
		}
		return -1, fmt.Errorf("registry credentials directory %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("registry credentials directory %s: %w", dir, err)
	}
	uid := os.Geteuid()
	switch {
	case int(st.Uid) != uid:
		unix.Close(fd)
		return -1, fmt.Errorf("registry credentials directory %s belongs to uid %d, not to you (uid %d): refusing it", dir, st.Uid, uid)
	case st.Mode&0o022 != 0:
		unix.Close(fd)
		return -1, fmt.Errorf("registry credentials directory %s is writable by other users (mode %04o): refusing it", dir, st.Mode&0o7777)
	}
	return fd, nil
}

// readAt reads the credentials file name in the directory dfd (path p for
// messages): nil when there is none. It must be a regular file of the
// caller's, not a link, writable by nobody else, and at most maxFile bytes;
// one others can read is made private (it is the caller's).
func readAt(dfd int, name, p string) ([]byte, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("registry credentials %s is a symbolic link: refusing it", p)
		}
		return nil, fmt.Errorf("reading registry credentials %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("reading registry credentials %s: %w", p, err)
	}
	uid := os.Geteuid()
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("registry credentials %s is not a regular file: refusing it", p)
	case int(st.Uid) != uid:
		return nil, fmt.Errorf("registry credentials %s belongs to uid %d, not to you (uid %d): refusing it", p, st.Uid, uid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("registry credentials %s is writable by other users (mode %04o): refusing it", p, st.Mode&0o7777)
	case st.Size > maxFile:
		return nil, fmt.Errorf("registry credentials %s is too large (%d bytes, at most %d)", p, st.Size, maxFile)
	}
	if st.Mode&0o077 != 0 {
		_ = unix.Fchmod(fd, 0o600) // passwords: private
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials %s: %w", p, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("registry credentials %s is too large (more than %d bytes)", p, maxFile)
	}
	return b, nil
}

// readFile reads the credentials file at path (nil when it or its
// directory is missing).
func readFile(path string) ([]byte, error) {
	dfd, err := openDir(filepath.Dir(path), false)
	if err != nil {
		if _, serr := os.Lstat(filepath.Dir(path)); errors.Is(serr, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer unix.Close(dfd)
	return readAt(dfd, filepath.Base(path), path)
}

// update changes the credentials file at path with fn under an exclusive
// lock on its directory, and replaces it (when fn says it changed) with a
// complete new file, mode 0600, renamed into place. Files a killed update
// left behind are removed first (only lock holders write them).
func update(path string, fn func(c *config) (bool, error)) error {
	dir, name := filepath.Dir(path), filepath.Base(path)
	dfd, err := openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Flock(dfd, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", dir, err)
	}
	sweepTemps(dfd)
	b, err := readAt(dfd, name, path)
	if err != nil {
		return err
	}
	c, err := parse(b, path)
	if err != nil {
		return err
	}
	changed, err := fn(c)
	if err != nil || !changed {
		return err
	}
	out, err := c.marshal()
	if err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := tempPrefix + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing registry credentials in %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
	_, err = f.Write(out)
	if err == nil {
		err = unix.Fchmod(fd, 0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("writing registry credentials %s: %w", path, err)
	}
	return nil
}

// sweepTemps removes temporary files of killed updates from dfd.
func sweepTemps(dfd int) {
	d, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(d), ".")
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	for _, n := range names {
		if strings.HasPrefix(n, tempPrefix) {
			_ = unix.Unlinkat(dfd, n, 0)
		}
	}
}
