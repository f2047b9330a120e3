package build

import (
	"errors"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// WriteInRoot writes data to rel (a path in the image, absolute or not)
// inside root, replacing what is there, with every directory resolved
// inside root and the file itself not followed if it is a symlink.
func WriteInRoot(root, rel string, data []byte, mode uint32) error {
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rf.Close()
	d, err := securejoin.MkdirAllHandle(rf, filepath.Dir(rel), 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	base := filepath.Base(rel)
	if err := unix.Unlinkat(int(d.Fd()), base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	fd, err := unix.Openat(int(d.Fd()), base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(os.FileMode(mode)); err != nil {
		return err
	}
	return f.Close()
}
