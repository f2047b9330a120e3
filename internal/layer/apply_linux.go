package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/tmptree"
)

// Apply reads the uncompressed layer tar r to its end and applies it to the
// directory root. On error root is left in an unspecified state (but nothing
// outside it was touched); the caller removes it.
func Apply(root string, r io.Reader, o Options) (Stats, error) {
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("opening root %s: %w", root, err)
	}
	a := &applier{root: rf, rootPath: root, o: o, written: map[string]bool{}, buf: make([]byte, 1<<20), wbuf: make([]byte, 1<<20)}
	defer a.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a.stats, fmt.Errorf("reading layer tar: %w", tarErr(err))
		}
		a.stats.Entries++
		if err := a.entry(hdr, tr); err != nil {
			return a.stats, err
		}
	}
	for _, d := range a.opaque {
		if err := a.pruneOpaque(d); err != nil {
			return a.stats, fmt.Errorf("applying opaque directory /%s: %w", d, a.cause(err))
		}
	}
	return a.stats, nil
}

// tarErr makes a truncated tar say so.
func tarErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("truncated (unexpected end of data)")
	}
	return err
}

// applier is the state of one layer being applied.
type applier struct {
	root     *os.File // O_PATH handle of the root directory
	rootPath string   // its path, never shown: errors name paths in the layer
	o        Options
	stats    Stats
	written  map[string]bool // paths this layer created (and their parents)
	opaque   []string        // directories marked opaque in this layer
	buf      []byte          // reads of the tar stream
	wbuf     []byte          // writes of files (holeWriter)

	// The last parent directory resolved, as tars list a directory's
	// entries together. Dropped whenever a directory or symlink is
	// removed or replaced, since the cached path could lead through it.
	cachePath string
	cacheDir  *os.File
}

func (a *applier) close() {
	a.dropCache()
	_ = a.root.Close()
}

func (a *applier) dropCache() {
	if a.cacheDir != nil {
		_ = a.cacheDir.Close()
	}
	a.cacheDir, a.cachePath = nil, ""
}

// parent returns a directory handle for dir (relative to the root),
// creating missing directories, every component resolved inside the root.
func (a *applier) parent(dir string) (*os.File, error) {
	if a.cacheDir != nil && a.cachePath == dir {
		return a.cacheDir, nil
	}
	a.dropCache()
	d, err := securejoin.MkdirAllHandle(a.root, "/"+dir, 0o755)
	if err != nil {
		return nil, err
	}
	a.cacheDir, a.cachePath = d, dir
	return d, nil
}

// markWritten records p and its parents as coming from this layer.
func (a *applier) markWritten(p string) {
	for p != "" && !a.written[p] {
		a.written[p] = true
		p, _ = split(p)
	}
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the root itself: keep its mode
	}
	if n := len(a.rootPath) + 1 + len(name); n >= unix.PathMax {
		return fmt.Errorf("extracting /%s: %w (%d bytes with the build directory; an image cannot hold paths of %d bytes or more)",
			name, unix.ENAMETOOLONG, n, unix.PathMax)
	}
	dir, base := split(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	if err := a.apply(hdr, name, dir, base, r); err != nil {
		if errors.Is(err, ErrHostile) || errors.Is(err, ErrTooLarge) {
			return err
		}
		return fmt.Errorf("extracting /%s: %w", name, err)
	}
	return nil
}

// cause is an error of securejoin as a user should see it: the system error
// alone where there is one (the messages around it name paths of the
// temporary tree), otherwise err with the root's path left out of the paths
// it names.
func (a *applier) cause(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	if a.rootPath == "" || !strings.Contains(err.Error(), a.rootPath) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), a.rootPath, ""))
}

func (a *applier) apply(hdr *tar.Header, name, dir, base string, r io.Reader) error {
	keep, target, err := admit(hdr, name, &a.stats, a.o.MaxSize)
	if !keep || err != nil {
		return err
	}
	pd, err := a.parent(dir)
	if err != nil {
		return fmt.Errorf("creating its directory: %w", a.cause(err))
	}
	a.markWritten(name)
	fd := int(pd.Fd())
	if hdr.Typeflag == tar.TypeDir {
		return a.mkdir(fd, base, hdr)
	}
	if err := a.removeExisting(fd, base); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		return a.file(fd, base, hdr, r)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, fd, base); err != nil {
			return fmt.Errorf("creating symlink: %w", err)
		}
		a.chownAt(fd, base, hdr)
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		_ = unix.UtimesNanoAt(fd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	case tar.TypeLink:
		return a.link(fd, base, target)
	case tar.TypeFifo:
		if err := unix.Mknodat(fd, base, unix.S_IFIFO|fileMode(hdr), 0); err != nil {
			return fmt.Errorf("creating fifo: %w", err)
		}
		a.chownAt(fd, base, hdr)
		return nil
	}
	return nil
}

// fileMode is the mode a non-directory gets: set-uid/set-gid cleared,
// readable by its owner.
func fileMode(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode)&0o1777 | 0o400
}

// dirMode is the mode a directory gets: set-uid/set-gid cleared, usable by
// its owner.
func dirMode(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode)&0o1777 | 0o700
}

// mkdir makes (or keeps) the directory base in dirfd and gives it hdr's mode.
func (a *applier) mkdir(dirfd int, base string, hdr *tar.Header) error {
	err := unix.Mkdirat(dirfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := a.removeExisting(dirfd, base); err != nil {
				return err
			}
			err = unix.Mkdirat(dirfd, base, 0o700)
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, dirMode(hdr)); err != nil {
		return fmt.Errorf("setting mode: %w", err)
	}
	if a.o.KeepOwner {
		_ = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	}
	return nil
}

// file writes a regular file, runs of zeros as holes (holeWriter).
func (a *applier) file(dirfd int, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	w := &holeWriter{f: f, buf: a.wbuf}
	if _, err := io.CopyBuffer(w, r, a.buf); err != nil {
		return fmt.Errorf("writing file: %w", tarErr(err))
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("writing file: %w", err)
	}
	if a.o.KeepOwner {
		_ = f.Chown(hdr.Uid, hdr.Gid)
	}
	// After chown, which clears set-uid bits anyway; these are cleared here too.
	if err := unix.Fchmod(fd, fileMode(hdr)); err != nil {
		return fmt.Errorf("setting mode: %w", err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	return f.Close()
}

// link makes base in dirfd a hard link to target (relative to the root),
// whose parent is resolved inside the root and whose last component is not
// followed.
func (a *applier) link(dirfd int, base, target string) error {
	tdir, tbase := split(target)
	th, err := securejoin.OpenatInRoot(a.root, "/"+tdir)
	if err != nil {
		return fmt.Errorf("hard link target /%s: %w", target, a.cause(err))
	}
	defer th.Close()
	if err := unix.Linkat(int(th.Fd()), tbase, dirfd, base, 0); err != nil {
		return fmt.Errorf("hard link to /%s: %w", target, err)
	}
	return nil
}

// chownAt applies hdr's owner to base in dirfd without following it.
func (a *applier) chownAt(dirfd int, base string, hdr *tar.Header) {
	if a.o.KeepOwner {
		_ = unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	}
}

// removeExisting removes whatever is at base in dirfd (nothing is fine).
func (a *applier) removeExisting(dirfd int, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	// The cached parent is dirfd itself, which this does not affect.
	return tmptree.RemoveAt(dirfd, base)
}

// whiteout handles a .wh. entry in dir.
func (a *applier) whiteout(dir, base string) error {
	if base == opaqueMarker {
		a.opaque = append(a.opaque, dir)
		a.markWritten(dir)
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		a.stats.Skipped++ // other AUFS metadata (.wh..wh.plnk …)
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return fmt.Errorf("%w: whiteout %s/%s names no file", ErrHostile, dir, base)
	}
	pd, err := securejoin.OpenatInRoot(a.root, "/"+dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing there to hide
	}
	if err != nil {
		return fmt.Errorf("applying whiteout %s/%s: %w", dir, base, a.cause(err))
	}
	defer pd.Close()
	a.dropCache()
	if err := tmptree.RemoveAt(int(pd.Fd()), victim); err != nil {
		return fmt.Errorf("applying whiteout %s/%s: %w", dir, base, err)
	}
	return nil
}

// pruneOpaque removes everything under dir that this layer did not write.
func (a *applier) pruneOpaque(dir string) error {
	a.dropCache()
	h, err := securejoin.OpenatInRoot(a.root, "/"+dir)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return a.pruneFd(fd, dir)
}

// pruneFd removes the entries of the directory fd (at rel) that this layer
// did not write, recursing into those it did; it closes fd.
func (a *applier) pruneFd(fd int, rel string) error {
	d := os.NewFile(uintptr(fd), rel)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if !a.written[p] {
			if err := tmptree.RemoveAt(fd, n); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue
		}
		if err != nil {
			return err
		}
		if err := a.pruneFd(cfd, p); err != nil {
			return err
		}
	}
	return nil
}
