package defbuild

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// copyInto copies src (a host path, or a path already resolved inside an
// earlier stage's tree) to dst, a path in the image tree root, the way
// Apptainer's `cp -fLr SRC DST` does: into dst when dst is an existing
// directory, else as dst. Every directory of dst is resolved inside root
// and nothing in root is followed: a link in the tree cannot send the copy
// out of it. follow says whether links in src are followed (host files, as
// cp -L does) or copied as links (files of another stage's tree, which
// could point anywhere on the host).
func copyInto(root, src, dst string, follow bool) error {
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rf.Close()
	dst = filepath.Clean("/" + dst)
	name := filepath.Base(dst)
	parent, err := securejoin.MkdirAllHandle(rf, filepath.Dir(dst), 0o755)
	if err != nil {
		return fmt.Errorf("making %s in the image: %w", filepath.Dir(dst), err)
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	if dst != "/" {
		if fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			defer unix.Close(fd)
			pfd, name = fd, filepath.Base(src)
		}
	} else {
		pfd, name = int(parent.Fd()), filepath.Base(src)
	}
	sdir, err := os.Open(filepath.Dir(src))
	if err != nil {
		return err
	}
	defer sdir.Close()
	return copyEntry(int(sdir.Fd()), filepath.Base(src), pfd, name, follow, src)
}

// copyEntry copies the entry sname of the directory sfd to dname in dfd.
// show is the source's path for errors.
func copyEntry(sfd int, sname string, dfd int, dname string, follow bool, show string) error {
	flags := 0
	if !follow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, sname, &st, flags); err != nil {
		return fmt.Errorf("%s: %w", show, err)
	}
	mode := st.Mode & 0o7777 &^ (unix.S_ISUID | unix.S_ISGID)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return copyDir(sfd, sname, dfd, dname, mode, follow, show)
	case unix.S_IFREG:
		return copyFile(sfd, sname, dfd, dname, mode, show)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(sfd, sname, buf)
		if err != nil {
			return fmt.Errorf("%s: %w", show, err)
		}
		if err := removeNonDir(dfd, dname); err != nil {
			return err
		}
		return unix.Symlinkat(string(buf[:n]), dfd, dname)
	}
	return fmt.Errorf("%s is not a regular file, directory or link", show)
}

// removeNonDir removes dname from dfd unless it is absent or a directory
// (cp -f replaces files, not directories).
func removeNonDir(dfd int, dname string) error {
	err := unix.Unlinkat(dfd, dname, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: a directory is in the way", dname)
	}
	return err
}

func copyDir(sfd int, sname string, dfd int, dname string, mode uint32, follow bool, show string) error {
	src, err := unix.Openat(sfd, sname, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|nofollow(follow), 0)
	if err != nil {
		return fmt.Errorf("%s: %w", show, err)
	}
	sf := os.NewFile(uintptr(src), show)
	defer sf.Close()
	if err := unix.Mkdirat(dfd, dname, mode|0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("making %s: %w", dname, err)
	}
	dst, err := unix.Openat(dfd, dname, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s in the image is not a directory: %w", dname, err)
	}
	defer unix.Close(dst)
	names, err := sf.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading %s: %w", show, err)
	}
	for _, n := range names {
		if err := copyEntry(src, n, dst, n, follow, show+"/"+n); err != nil {
			return err
		}
	}
	return unix.Fchmod(dst, mode)
}

func copyFile(sfd int, sname string, dfd int, dname string, mode uint32, show string) error {
	src, err := unix.Openat(sfd, sname, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", show, err)
	}
	sf := os.NewFile(uintptr(src), show)
	defer sf.Close()
	if fi, err := sf.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s changed while it was copied", show)
	}
	if err := removeNonDir(dfd, dname); err != nil {
		return err
	}
	fd, err := unix.Openat(dfd, dname, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dname, err)
	}
	df := os.NewFile(uintptr(fd), dname)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil {
		return fmt.Errorf("copying %s: %w", show, err)
	}
	if err := df.Chmod(os.FileMode(mode) & os.ModePerm); err != nil {
		return err
	}
	return df.Close()
}

func nofollow(follow bool) int {
	if follow {
		return 0
	}
	return unix.O_NOFOLLOW
}

// hasMeta reports whether a %files source is a glob pattern.
func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }
