package container

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// stagingDir is the host directory the stage covers with its private staging
// tmpfs inside its own mount namespace (never visible outside it). Every host
// path the container needs is opened before the staging tmpfs hides it.
const stagingDir = "/tmp"

// stagingOpts are the options of the staging tmpfs and of the tmpfs holding
// generated files.
const stagingOpts = "mode=0755,size=16m"

// readFile reads the file at p like os.ReadFile, but without registering
// the descriptor with Go's poller: for a file of the image that would cost
// a POLL request to the FUSE server, which serves one request at a time.
func readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return readFD(fd, p)
}

// readFD reads the open file fd (named p in errors) from its start to its
// end.
func readFD(fd int, p string) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// fdPath names an open file by its /proc/self/fd link, which mount(2)
// follows to the very object that was opened.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// bind bind-mounts src on dst (recursively when rec).
func bind(src, dst string, rec bool) error {
	flags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.MS_REC
	}
	return unix.Mount(src, dst, "", flags, "")
}

// setAttr sets mount attributes on the mount at path (and below when rec).
func setAttr(path string, attr uint64, rec bool) error {
	flags := 0
	if rec {
		flags = unix.AT_RECURSIVE
	}
	return unix.MountSetattr(unix.AT_FDCWD, path, uint(flags), &unix.MountAttr{Attr_set: attr})
}
