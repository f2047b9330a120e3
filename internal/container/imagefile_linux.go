package container

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/filekind"
	"github.com/launch-hpc/launch/internal/progress"
)

// Reading files of the image. The image is hostile input: a file the stage
// reads while it sets the container up may be a named pipe (open(2) would
// wait for a writer that never comes, with nothing left to end the stage),
// a device, or a sparse file of many gigabytes that takes a few kilobytes in
// the image. Every read of image content on the set-up path goes through
// openRegular: opened non-blocking, refused unless it is a regular file, and
// read only up to a bound the caller gives.

// openRegular opens the file at p for reading and returns its descriptor
// and its status, or an error when it cannot be opened or is not a regular
// file. It never blocks on a named pipe: it opens with O_NONBLOCK, which
// has no effect on a regular file's reads (open(2)), and fstat decides
// before anything is read. The descriptor is not registered with Go's
// poller, which for a file of the image would cost a POLL request to the
// FUSE server. Errors name no path: p is the stage's path, not the one the
// container sees, and the caller names the file.
func openRegular(p string) (int, *unix.Stat_t, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	st := &unix.Stat_t{}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, nil, notRegularError(p)
	}
	return fd, st, nil
}

// readRegular reads the regular file at p whole (openRegular), refusing
// one larger than max bytes before reading anything. Errors name no path
// (see openRegular); a missing file's error satisfies
// errors.Is(err, os.ErrNotExist).
func readRegular(p string, max int64) ([]byte, error) {
	fd, st, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if st.Size > max {
		return nil, tooLargeError{size: st.Size, max: max}
	}
	// The size is only a hint (a file may change while it is read): read
	// up to max+1 bytes, and refuse what goes past max.
	buf := make([]byte, 0, st.Size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		if int64(len(buf)) > max {
			return nil, tooLargeError{size: int64(len(buf)), max: max}
		}
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// errNotRegular is what a file that is not a regular file is refused with
// (errors.Is); the message says what it is instead.
var errNotRegular = errors.New("not a regular file")

// notRegularError is errNotRegular for the file at p, which fstat found is
// not a regular file; the file is looked at again only to say what it is.
func notRegularError(p string) error {
	kind := "of another type"
	if fi, err := os.Stat(p); err == nil {
		kind = filekind.Name(fi.Mode())
	}
	return fmt.Errorf("%w (%s)", errNotRegular, kind)
}

// tooLargeError is a file refused for its size.
type tooLargeError struct{ size, max int64 }

func (e tooLargeError) Error() string {
	return fmt.Sprintf("%s, larger than the %s launch reads", progress.Size(e.size), progress.Size(e.max))
}

// fdReaderAt reads an open file descriptor at given offsets (io.ReaderAt),
// without Go's poller.
type fdReaderAt int

// ReadAt reads len(b) bytes at off, or fewer with io.EOF at the end.
func (fd fdReaderAt) ReadAt(b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Pread(int(fd), b[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// explainAccess turns a failed access(2) into words.
func explainAccess(dir string, err error) error {
	switch {
	case errors.Is(err, unix.EROFS):
		return errors.New("on a read-only filesystem, which cannot hold a writable layer")
	case errors.Is(err, unix.EACCES):
		return errors.New("permission denied (you need read, write and search permission on it)")
	}
	return err
}

// unwrapPath drops the path from an *os.PathError, whose message the
// caller already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
