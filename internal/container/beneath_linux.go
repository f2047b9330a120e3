package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Descriptor-relative file operations for places another user, or an
// image, may have prepared: the directories below a --workdir, and the
// files launch writes into its own tmpfs mounts. Nothing here follows a
// symbolic link or leaves the directory it starts from.

// resolveBeneath are the openat2 resolve flags that keep a lookup inside
// its starting directory and refuse every symbolic link on the way.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS

// openat2 opens path relative to dirfd with openat2(2), retrying where the
// kernel asks for it (EAGAIN: a concurrent rename it could not rule out).
func openat2(dirfd int, path string, flags int, mode uint32, resolve uint64) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Mode: uint64(mode), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 16 {
			continue
		}
		return fd, err
	}
}

// WorkdirDir is a directory launch keeps below a --workdir.
type WorkdirDir struct {
	// Rel is its path below the workdir ("tmp", "scratch/out_run").
	Rel string
	// Mode is its mode: permission bits, with unix.S_ISVTX for a sticky one.
	Mode uint32
}

// PrepareWorkdir makes (or finds) each directory of dirs below the workdir
// wd, as the user uid, and gives it its mode. wd itself is followed as
// named (the user chose that path), nothing below it: each component is
// made with mkdirat and opened with openat2 from its parent's descriptor,
// without following a symbolic link, and must be a directory owned by uid;
// the mode is set with fchmod on the opened directory. The error names the
// path that is refused; nothing is made or changed when one is.
func PrepareWorkdir(wd string, dirs []WorkdirDir, uid int) error {
	wfd, err := unix.Open(wd, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: wd, Err: err}
	}
	defer unix.Close(wfd)
	// What is there already is checked first, so that a refusal changes
	// nothing; the second pass checks again as it makes what is missing.
	for _, d := range dirs {
		fd, err := walkWorkdir(wfd, wd, d.Rel, uid, false)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	for _, d := range dirs {
		fd, err := walkWorkdir(wfd, wd, d.Rel, uid, true)
		if err != nil {
			return err
		}
		err = unix.Fchmod(fd, d.Mode)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("setting the mode of %s: %w", filepath.Join(wd, d.Rel), err)
		}
	}
	return nil
}

// openWorkdirDir opens (O_PATH) the directory rel below the workdir wd
// with the checks of PrepareWorkdir, creating nothing: the stage opens the
// bind sources below a workdir with it, so a directory swapped for a link
// after PrepareWorkdir is refused too.
func openWorkdirDir(wd, rel string, uid int) (int, error) {
	wfd, err := unix.Open(wd, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: wd, Err: err}
	}
	defer unix.Close(wfd)
	return walkWorkdir(wfd, wd, rel, uid, false)
}

// walkWorkdir opens rel below wfd (the workdir wd) one component at a
// time, making missing ones (mode 0700) when create, and returns a
// descriptor of the last: O_RDONLY when create (fchmod needs one), else
// O_PATH.
func walkWorkdir(wfd int, wd, rel string, uid int, create bool) (int, error) {
	if !filepath.IsLocal(rel) {
		return -1, fmt.Errorf("%s is not a path below %s", rel, wd)
	}
	comps := strings.Split(filepath.Clean(rel), "/")
	fd, p := wfd, wd
	for i, c := range comps {
		parent := fd
		p = filepath.Join(p, c)
		var err error
		fd, err = stepWorkdir(parent, c, p, uid, create, create && i == len(comps)-1)
		if parent != wfd {
			unix.Close(parent)
		}
		if err != nil {
			return -1, err
		}
	}
	return fd, nil
}

// stepWorkdir opens the directory name (the path p) in parent for
// walkWorkdir, making it first when create, O_RDONLY when last else O_PATH.
func stepWorkdir(parent int, name, p string, uid int, create, last bool) (int, error) {
	if create {
		if err := unix.Mkdirat(parent, name, 0o700); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("creating %s: %w", p, err)
		}
	}
	flags := unix.O_PATH
	if last {
		flags = unix.O_RDONLY
	}
	fd, err := openat2(parent, name, flags|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0, resolveBeneath)
	if err == unix.ELOOP || err == unix.ENOTDIR {
		var st unix.Stat_t
		if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, fmt.Errorf("%s is a symbolic link (launch follows none below a --workdir)", p)
		}
		return -1, fmt.Errorf("%s is not a directory", p)
	}
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("checking %s: %w", p, err)
	}
	if int(st.Uid) != uid {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is owned by uid %d, not by you (uid %d)", p, st.Uid, uid)
	}
	return fd, nil
}

// writeInTmpfs replaces the content of the existing regular file rel
// below dir, the root of a tmpfs of launch's own whose device is dev,
// through descriptors only: dir is opened without following a symbolic
// link and must still be that tmpfs, rel is opened from it without
// following a link or crossing a mount, and must be a regular file of
// that tmpfs with no other link. Whatever a mount made later or an image
// put in the way, the write cannot land anywhere else.
func writeInTmpfs(dir string, dev uint64, rel string, content []byte) error {
	dfd, err := openat2(unix.AT_FDCWD, dir, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Dev != dev {
		return fmt.Errorf("%s is no longer the tmpfs launch mounted there", dir)
	}
	fd, err := openat2(dfd, rel, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0, resolveBeneath|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(dir, rel), Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: filepath.Join(dir, rel), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != dev || st.Nlink != 1 {
		return fmt.Errorf("%s is not a file launch made", filepath.Join(dir, rel))
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		return &os.PathError{Op: "truncate", Path: filepath.Join(dir, rel), Err: err}
	}
	return writeFull(fd, content, filepath.Join(dir, rel))
}

// createInTmpfs makes the new file name (one component) with content in
// the directory dirfd of a tmpfs of launch's own, exclusively and without
// following a link, and returns its descriptor.
func createInTmpfs(dirfd int, name string, content []byte) (int, error) {
	if strings.Contains(name, "/") || name == "" || name == "." || name == ".." {
		return -1, fmt.Errorf("generated file name %q is not one path component", name)
	}
	fd, err := openat2(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o644, resolveBeneath|unix.RESOLVE_NO_XDEV)
	if err != nil {
		return -1, &os.PathError{Op: "create", Path: name, Err: err}
	}
	if err := writeFull(fd, content, name); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openTmpfsDir opens dir, where launch has just mounted a tmpfs, without
// following a symbolic link, and checks that it is a tmpfs.
func openTmpfsDir(dir string) (int, error) {
	fd, err := openat2(unix.AT_FDCWD, dir, unix.O_PATH|unix.O_DIRECTORY, 0, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		unix.Close(fd)
		if err == nil {
			err = errors.New("not a tmpfs")
		}
		return -1, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return fd, nil
}

// writeFull writes all of b to fd (named p in errors).
func writeFull(fd int, b []byte, p string) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: p, Err: err}
		}
		b = b[n:]
	}
	return nil
}
