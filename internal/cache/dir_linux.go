package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks is how many symbolic links the walk to the cache follows, as
// the kernel's own limit (ELOOP after 40).
const maxLinks = 40

// fix is the advice every refusal of a cache directory ends with.
const fix = "set " + EnvDir + " to a directory only you can write"

// dirFrame is one directory of the walk: an O_PATH descriptor and its path.
type dirFrame struct {
	fd   int
	path string
}

// openTrusted opens the directory dir (absolute), creating what is
// missing with mode 0700, and checks that no other user can have put
// anything in it: every directory on the way from / must belong to uid or
// to root and be writable by nobody else unless it is sticky (like /tmp:
// then others can add names but not replace this user's), every symbolic
// link on the way must belong to uid or root, and dir itself must belong
// to uid and be writable by nobody else. Each step is taken relative to
// the descriptor of the directory checked before it, without following
// links (a link is read and its target walked the same way), so nothing
// can be swapped in between a check and its use. It returns a read-only
// descriptor of dir.
func openTrusted(dir string, uid int) (*os.File, error) { return openTrustedRoot(dir, uid, 0) }

// openTrustedRoot is openTrusted where root's directories show as owned
// by the uid root (the overflow uid, in a user namespace that does not map
// root: see OpenVerdicts). There (root != 0) that uid stands for every
// user the namespace does not map, so a link of root's is refused: another
// user's link would look the same, and could lead anywhere. A directory
// of that uid is still taken for root's, under the rule of every directory
// above the cache (writable by nobody else unless sticky).
func openTrustedRoot(dir string, uid, root int) (*os.File, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("cache directory %s: not an absolute path", dir)
	}
	rootFd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: opening /: %w", dir, err)
	}
	stack := []dirFrame{{rootFd, "/"}}
	defer func() {
		for _, f := range stack {
			unix.Close(f.fd)
		}
	}()
	if err := checkAncestor(dir, "/", rootFd, uid, root); err != nil {
		return nil, err
	}
	rest := strings.Split(dir, "/")
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		cur := stack[len(stack)-1]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				unix.Close(cur.fd)
				stack = stack[:len(stack)-1]
			}
			continue
		}
		p := filepath.Join(cur.path, name)
		fd, err := unix.Openat(cur.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(cur.fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, fmt.Errorf("creating cache directory %s: %w (%s)", p, err, fix)
			}
			fd, err = unix.Openat(cur.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("opening cache directory %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("opening cache directory %s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			unix.Close(fd)
			if int(st.Uid) != uid && root != 0 {
				return nil, fmt.Errorf("cache directory %s: %s is a symbolic link of uid %d, which in this user namespace stands for root and every other user alike: it could be anyone's and lead anywhere (%s)", dir, p, st.Uid, fix)
			}
			if int(st.Uid) != uid && int(st.Uid) != root {
				return nil, fmt.Errorf("cache directory %s: %s is a symbolic link of uid %d, neither yours nor root's: it could lead anywhere (%s)", dir, p, st.Uid, fix)
			}
			if links++; links > maxLinks {
				return nil, fmt.Errorf("cache directory %s: %w", dir, unix.ELOOP)
			}
			target, err := readlinkat(cur.fd, name)
			if err != nil {
				return nil, fmt.Errorf("cache directory %s: reading the link %s: %w", dir, p, err)
			}
			if strings.HasPrefix(target, "/") {
				for _, f := range stack[1:] {
					unix.Close(f.fd)
				}
				stack = stack[:1]
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		case unix.S_IFDIR:
		default:
			unix.Close(fd)
			return nil, fmt.Errorf("cache directory %s: %s is not a directory (%s)", dir, p, fix)
		}
		stack = append(stack, dirFrame{fd, p})
		if len(rest) > 0 { // the cache directory itself is checked below
			if err := checkAncestor(dir, p, fd, uid, root); err != nil {
				return nil, err
			}
		}
	}
	top := stack[len(stack)-1]
	if err := checkOwn(top.fd, top.path, uid); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(top.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening cache directory %s: %w", top.path, err)
	}
	return os.NewFile(uintptr(fd), top.path), nil
}

// checkAncestor checks a directory above the cache: it must belong to uid
// or root (uid root), and be writable by nobody else unless it is sticky.
func checkAncestor(dir, p string, fd, uid, root int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cache directory %s: %s: %w", dir, p, err)
	}
	if int(st.Uid) != uid && int(st.Uid) != root {
		return fmt.Errorf("cache directory %s: %s belongs to uid %d, neither you nor root: that user could replace what is in it (%s)", dir, p, st.Uid, fix)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("cache directory %s: %s is writable by other users and not sticky (mode %04o): they could replace what is in it (%s)", dir, p, st.Mode&0o7777, fix)
	}
	return nil
}

// checkOwn checks a directory of the cache itself (the cache directory
// and the ones below it): it must belong to uid and be writable by nobody
// else.
func checkOwn(fd int, p string, uid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cache directory %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("cache directory %s is not a directory (%s)", p, fix)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("cache directory %s belongs to uid %d, not to you (uid %d): refusing images another user could have put there (%s)", p, st.Uid, uid, fix)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("cache directory %s is writable by other users (mode %04o): refusing images they could have put there (check what is in it and chmod 0700 it, or %s)", p, st.Mode&0o7777, fix)
	}
	return nil
}

// openSub opens (creating it, mode 0700) the directory rel below the
// cache directory d, one component at a time, following no link, and
// checks each as the cache directory itself.
func openSub(d *os.File, rel string, uid int) (*os.File, error) {
	cur, err := unix.Openat(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening cache directory %s: %w", d.Name(), err)
	}
	p := d.Name()
	for _, name := range strings.Split(rel, "/") {
		p = filepath.Join(p, name)
		const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		fd, err := unix.Openat(cur, name, flags, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(cur, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return nil, fmt.Errorf("creating cache directory %s: %w", p, err)
			}
			fd, err = unix.Openat(cur, name, flags, 0)
		}
		unix.Close(cur)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("cache directory %s is not a directory (a link or a file: %v); remove it", p, err)
		}
		if err != nil {
			return nil, fmt.Errorf("opening cache directory %s: %w", p, err)
		}
		if err := checkOwn(fd, p, uid); err != nil {
			unix.Close(fd)
			return nil, err
		}
		cur = fd
	}
	return os.NewFile(uintptr(cur), p), nil
}

// readlinkat reads the target of the link name in the directory dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= unix.PathMax {
			return "", unix.ENAMETOOLONG
		}
		buf = make([]byte, 2*len(buf))
	}
}

// entryFlags open a cache entry: never through a link, never blocking on
// a FIFO or device someone put there.
const entryFlags = unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC

// openEntry opens the entry name of the cache directory dir (flags:
// O_RDONLY or O_RDWR, maybe O_CREAT) and checks that it is a regular file
// of uid's that nobody else can write. It returns the file, in blocking
// mode, and its status.
func openEntry(dir *os.File, name string, flags int, uid int) (*os.File, *unix.Stat_t, error) {
	p := filepath.Join(dir.Name(), name)
	fd, err := unix.Openat(int(dir.Fd()), name, flags|entryFlags, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = errors.New("a symbolic link")
		}
		return nil, nil, &os.PathError{Op: "opening cache entry", Path: p, Err: err}
	}
	st, err := checkEntry(fd, p, uid)
	if err == nil {
		// Regular: O_NONBLOCK means nothing for it, but leave none behind.
		var fl int
		if fl, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), p), st, nil
}

// checkEntry checks the opened entry fd (path p): a regular file of uid's
// that nobody else can write.
func checkEntry(fd int, p string, uid int) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", p, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("cache entry %s is not a regular file (mode %06o)", p, st.Mode)
	case int(st.Uid) != uid:
		return nil, fmt.Errorf("cache entry %s belongs to uid %d, not to you (uid %d)", p, st.Uid, uid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("cache entry %s is writable by other users (mode %04o)", p, st.Mode&0o7777)
	}
	return &st, nil
}
