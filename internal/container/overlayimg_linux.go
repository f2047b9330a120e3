package container

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/reap"
	"github.com/launch-hpc/launch/internal/runspec"
)

// Overlay images: an --overlay FILE (ext3, or SquashFS read-only) or a
// SIF's overlay partition is mounted through internal/fuse (fuse2fs,
// squashfuse) on a directory of the staging area, and that directory is
// then used as an overlay directory is (its upper and work directories for
// a writable one). The file is treated as hostile: opened without
// following a link, non-blocking, required to be a regular file (and the
// user's own for writing), checked again by the stage (same device and
// inode), and locked (exclusively for a writer, shared for readers) like
// an overlay directory. fuse2fs reads it through a descriptor, never by
// path.

// ext3Magic is the ext2/3/4 superblock magic, at byte 56 of the superblock,
// which starts at byte 1024.
const ext3Magic = 0xEF53

// ext3Stop bounds how long fuse2fs may take to write its filesystem back
// once asked to stop.
const ext3Stop = 2 * time.Minute

// MarkReadOnlyImages makes read-only, with a warning, each --overlay of
// s without :ro that is a SquashFS image file, as Apptainer uses one:
// such an image cannot be written, so it is a lower layer, and the checks
// of writable layers (runspec.Validate: at most one) must not count it.
// Run it before s.Validate. It reads the first bytes of each such file
// (not following a last-component link, without blocking); anything it
// cannot read is left to the checks that follow.
func MarkReadOnlyImages(s *runspec.Spec, log *msg.Logger) {
	for i, o := range s.Overlays {
		if o.ReadOnly {
			continue
		}
		fd, err := unix.Open(o.Dir, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		f := os.NewFile(uintptr(fd), o.Dir)
		fi, err := f.Stat()
		if err == nil && fi.Mode().IsRegular() {
			if kind, _ := imageKind(f); kind == ImageSquashFS {
				warnReadOnlySquashFS(log, o.Dir)
				s.Overlays[i].ReadOnly = true
			}
		}
		f.Close()
	}
}

// warnReadOnlySquashFS says that the --overlay SquashFS image path, given
// without :ro, is used read-only.
func warnReadOnlySquashFS(log *msg.Logger, path string) {
	log.Warnf("--overlay %s: a SquashFS image is read-only: using it read-only (add :ro to say so)", path)
}

// checkOverlayImage checks the overlay image file path (its filesystem at
// offset), used read-only or not, for the user uid, and returns the layer.
// An ext3 image used for writing that was not cleanly unmounted (its
// fuse2fs killed outright) is first repaired with e2fsck -p, under its lock.
func checkOverlayImage(path string, ro bool, offset int64, kind string, uid int, log *msg.Logger) (Overlay, error) {
	flags := unix.O_RDONLY
	if !ro {
		flags = unix.O_RDWR
	}
	given := kind == "" // an --overlay file, not a SIF's overlay partition
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			return Overlay{}, errors.New("a symbolic link: name the image file itself")
		case errors.Is(err, unix.EACCES) && !ro:
			return Overlay{}, errors.New("permission denied (a writable overlay image must be a file you can write; add :ro to use it read-only)")
		}
		return Overlay{}, explainAccess(path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Overlay{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Overlay{}, errors.New("not a regular file or a directory")
	}
	if kind == "" {
		if kind, err = imageKind(f); err != nil {
			return Overlay{}, err
		}
	}
	if kind == ImageSquashFS && !ro {
		if !given {
			return Overlay{}, errors.New("a SquashFS overlay partition is read-only")
		}
		// As Apptainer: a SquashFS image given to --overlay cannot be
		// written; it is used read-only, with a warning.
		warnReadOnlySquashFS(log, path)
		ro = true
	}
	if !ro && int(st.Uid) != uid {
		return Overlay{}, fmt.Errorf("owned by uid %d, not by you (uid %d): a writable overlay image must be your own file", st.Uid, uid)
	}
	o := Overlay{Dir: path, ReadOnly: ro, Image: kind, Offset: offset, Dev: st.Dev, Ino: st.Ino}
	if kind != ImageExt3 || ro {
		return o, nil
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, offset+1024); err != nil {
		return Overlay{}, fmt.Errorf("reading its superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[56:]) != ext3Magic {
		return Overlay{}, errors.New("not an ext3 filesystem (bad magic number in superblock)")
	}
	state := binary.LittleEndian.Uint16(sb[58:])
	if state&1 != 0 && state&2 == 0 {
		return o, nil // cleanly unmounted, no errors recorded
	}
	// Under the lock: a writer's fuse2fs marks it unclean while mounted.
	if err := takeLock(fd, o); err != nil {
		return Overlay{}, err
	}
	if err := preen(f, offset, path); err != nil {
		return Overlay{}, err
	}
	log.Warnf("overlay image %s was not cleanly unmounted; e2fsck -p checked and repaired it", path)
	return o, nil
}

// imageKind says which filesystem the overlay image f holds.
func imageKind(f *os.File) (string, error) {
	head := make([]byte, 1082)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("hsqs")):
		return ImageSquashFS, nil
	case len(head) >= 1082 && binary.LittleEndian.Uint16(head[1080:]) == ext3Magic:
		return ImageExt3, nil
	case len(head) >= 41 && string(head[32:41]) == "SIF_MAGIC":
		return "", errors.New("a SIF file: an overlay partition is used from the SIF being run (--writable to write into it), not as --overlay (not supported yet)")
	}
	return "", errors.New("not an ext3 or SquashFS overlay image, nor a directory")
}

// preen runs e2fsck -p on the ext3 filesystem at offset in f (reading the
// descriptor, never the path, which names it in messages).
func preen(f *os.File, offset int64, path string) error {
	dev := "/dev/fd/3"
	if offset > 0 {
		dev += "?offset=" + strconv.FormatInt(offset, 10)
	}
	cmd := exec.Command("e2fsck", "-p", dev)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() < 4 {
		return nil // 1, 2: errors corrected
	}
	if err != nil {
		said := strings.ReplaceAll(msg.OneLine(string(out)), dev, path)
		return fmt.Errorf("corrupt ext3 filesystem, which e2fsck -p cannot repair (%s); repair it with e2fsck -f %s", said, path)
	}
	return nil
}

// openOverlayImage opens the image file of the layer o in the stage,
// checks it is the file the launcher checked, and locks it (see
// openLayers). It returns the file and the lock's descriptor.
func openOverlayImage(o Overlay) (*os.File, int, error) {
	flags := unix.O_RDWR
	if o.ReadOnly {
		flags = unix.O_RDONLY
	}
	fd, err := unix.Open(o.Dir, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("overlay image %s: %w", o.Dir, err)
	}
	f := os.NewFile(uintptr(fd), o.Dir)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != o.Dev || st.Ino != o.Ino {
		f.Close()
		return nil, -1, fmt.Errorf("overlay image %s was replaced while the container started", o.Dir)
	}
	lock, err := unix.Dup(fd)
	if err != nil {
		f.Close()
		return nil, -1, fmt.Errorf("overlay image %s: %w", o.Dir, err)
	}
	unix.CloseOnExec(lock)
	if err := takeLock(lock, o); err != nil {
		unix.Close(lock)
		f.Close()
		return nil, -1, err
	}
	return f, lock, nil
}

// mountOverlayImage mounts the image of layer i below dir (an empty
// directory of the staging area) and returns where its filesystem is.
//
// fuse2fs mounts ext3 itself, in a mount namespace of its own (where the
// root never moves: the pivot does not reach it, so it never runs anything
// of the container's): dir is first made a shared tmpfs, so that its mount
// on dir/fs shows here too, as a peer of fuse2fs's own. They stay peers:
// the pivot's detaching of the old root then unmounts fuse2fs's own copy
// too, and from then on only fuse-overlayfs (which holds the layer open in
// its own namespace) keeps the filesystem mounted. When fuse-overlayfs is
// gone, killed with the payload's leftovers or by its parent-death signal
// when the stage is killed, fuse2fs's connection ends and it writes the
// image back and exits by itself, no signal needed (imageLayers.stop).
func (a *assembler) mountOverlayImage(i int, o Overlay, dir string) (string, error) {
	f := a.layerFDs[i]
	if o.Image == ImageSquashFS {
		bin, err := a.squashfuse()
		if err != nil {
			return "", err
		}
		srv, err := fuse.Mount(fuse.MountOptions{Image: f, Offset: o.Offset, Target: dir,
			UID: a.cfg.User.UID, GID: a.cfg.User.GID, Program: bin, Fork: a.fork})
		if err != nil {
			return "", fmt.Errorf("overlay image %s: %w", o.Dir, err)
		}
		a.imgLayers.add(srv, false)
		return dir, nil
	}
	bin, err := fuse.FindFuse2fs("")
	if err != nil {
		return "", err
	}
	if err := unix.Mount("ovlimg", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16k"); err != nil {
		return "", fmt.Errorf("overlay image %s: mounting its mount point: %w", o.Dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return "", fmt.Errorf("overlay image %s: sharing its mount point: %w", o.Dir, err)
	}
	fs := filepath.Join(dir, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		return "", fmt.Errorf("overlay image %s: creating its mount point: %w", o.Dir, err)
	}
	srv, err := fuse.MountExt3(fuse.Ext3Options{Image: f, Offset: o.Offset, Target: fs,
		ReadOnly: o.ReadOnly, Binary: bin, Fork: a.fork})
	if srv != nil {
		a.imgLayers.add(srv, true)
	}
	if err != nil {
		// fuse2fs names the image as it got it.
		return "", errors.New(strings.ReplaceAll(fmt.Sprintf("overlay image %s: %v", o.Dir, err), "/dev/fd/3", o.Dir))
	}
	if o.ReadOnly {
		if _, err := os.ReadDir(fs); err != nil {
			return "", ext3Error(o, srv, fmt.Errorf("reading it: %w", unwrapPath(err)))
		}
		return fs, nil
	}
	for _, sub := range []string{OverlayUpper, OverlayWork} {
		p := filepath.Join(fs, sub)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", ext3Error(o, srv, fmt.Errorf("creating /%s in it: %w", sub, unwrapPath(err)))
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return "", fmt.Errorf("overlay image %s: /%s in it is not a directory", o.Dir, sub)
		}
	}
	return fs, nil
}

// ext3Error is err on the ext3 image of o, with what its fuse2fs srv said
// and the advice to check it.
func ext3Error(o Overlay, srv *fuse.Server, err error) error {
	said := strings.ReplaceAll(msg.OneLine(srv.Stderr()), "/dev/fd/3", o.Dir)
	if said != "" {
		said = " (" + said + ")"
	}
	return fmt.Errorf("overlay image %s: %w%s: the filesystem may be corrupt, check it with e2fsck -f %s", o.Dir, err, said, o.Dir)
}

// add records a server.
func (l *imageLayers) add(s *fuse.Server, graceful bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if graceful {
		l.ext3 = append(l.ext3, s)
	} else {
		l.other = append(l.other, s)
	}
}

// spared reports whether pid is a graceful server's, which the payload's
// leftovers' killers must leave alone.
func (l *imageLayers) spared(pid int) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.ext3 {
		if s.LivePid() == pid {
			return true
		}
	}
	return false
}

// exited passes an exit its owner reaped to every server.
func (l *imageLayers) exited(ev reap.Exit) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range append(append([]*fuse.Server{}, l.ext3...), l.other...) {
		s.Exited(ev)
	}
}

// ext3Natural is how long a fuse2fs is given to end by itself once
// fuse-overlayfs is gone, before it is asked to (SIGHUP): when its mount
// is still held elsewhere (kernel overlayfs, with no fuse-overlayfs
// installed; fuse-overlayfs alive in a PID namespace).
const ext3Natural = 2 * time.Second

// stop stops every server and waits (reading exits, each passed on to
// also) until they are reaped: the others with SIGKILL; the graceful ones
// are waited for, once overlay (fuse-overlayfs, or nil) is stopped, to end
// by themselves (see mountOverlayImage), and after ext3Natural asked to
// with SIGHUP when their handler is in place (proc: a /proc to read that
// in). One that takes longer than ext3Stop is killed, with a warning.
func (l *imageLayers) stop(overlay *fuse.Server, proc *os.File, exits <-chan reap.Exit, also func(reap.Exit), log *msg.Logger) {
	if l == nil {
		return
	}
	l.mu.Lock()
	ext3, other := l.ext3, l.other
	l.mu.Unlock()
	if len(ext3) > 0 {
		overlay.Stop()
	}
	for _, s := range other {
		s.Stop()
	}
	natural := time.NewTimer(ext3Natural)
	defer natural.Stop()
	deadline := time.NewTimer(ext3Stop)
	defer deadline.Stop()
	for _, s := range append(append([]*fuse.Server{}, ext3...), other...) {
		for s.Live() {
			select {
			case ev := <-exits:
				l.exited(ev)
				also(ev)
			case <-natural.C:
				for _, e := range ext3 {
					if e.HangupReady(proc) {
						log.Debugf("%s (pid %d) still serving after %v: asking it to stop", e.Binary, e.Pid, ext3Natural)
						e.Hangup()
					}
				}
			case <-deadline.C:
				log.Warnf("%s (pid %d) did not write its overlay image back within %v; killing it: the image may need e2fsck", s.Binary, s.Pid, ext3Stop)
				s.Stop()
			}
		}
		log.Debugf("%s (pid %d) ended: %s %s", s.Binary, s.Pid, reap.Describe(s.Status()), msg.OneLine(s.Stderr()))
	}
}

// abortStop, for an abort during set-up (no reaping then; everything else
// below the stage killed already), waits for the graceful servers to end
// as in stop, asking them with SIGHUP after ext3Natural: with a PID
// namespace the kernel kills them outright when the stage exits.
func (l *imageLayers) abortStop(proc *os.File) {
	if l == nil {
		return
	}
	l.mu.Lock()
	ext3 := l.ext3
	l.mu.Unlock()
	start := time.Now()
	asked := false
	for _, s := range ext3 {
		for s.Running() && time.Since(start) < ext3Natural+5*time.Second {
			if !asked && time.Since(start) > ext3Natural {
				for _, e := range ext3 {
					if e.HangupReady(proc) {
						e.Hangup()
					}
				}
				asked = true
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// sifOverlay returns the layer of the SIF image img's overlay partition
// for the user uid (read-only unless writable), or nil when it has none.
func sifOverlay(img *image.Image, writable bool, uid int, log *msg.Logger) (*Overlay, error) {
	p := img.Overlay
	if img.Format != image.FormatSIF || p == nil {
		if writable {
			return nil, fmt.Errorf("--writable needs a sandbox (directory) image or a SIF with an overlay partition, and %s is a %s image without one: "+
				"use --writable-tmpfs or --overlay for a writable layer over it, or add one with 'launch overlay create %s'", img.Path, img.Format, img.Path)
		}
		return nil, nil
	}
	var kind string
	switch p.FS {
	case "Ext3":
		kind = ImageExt3
	case "Squashfs":
		kind = ImageSquashFS
	default:
		return nil, fmt.Errorf("SIF %s: overlay partition (descriptor %d) is of type %s; only ext3 and squashfs overlay partitions can be used", img.Path, p.ID, p.FS)
	}
	if writable && kind != ImageExt3 {
		return nil, fmt.Errorf("--writable: the overlay partition of SIF %s (descriptor %d) is SquashFS, which is read-only", img.Path, p.ID)
	}
	o, err := checkOverlayImage(img.Path, !writable, p.Offset, kind, uid, log)
	if err != nil {
		return nil, fmt.Errorf("SIF %s: overlay partition (descriptor %d): %w", img.Path, p.ID, err)
	}
	return &o, nil
}

// overlayImage checks one --overlay that names a file.
func overlayImage(o runspec.Overlay, uid int, log *msg.Logger) (Overlay, error) {
	l, err := checkOverlayImage(o.Dir, o.ReadOnly, 0, "", uid, log)
	if err != nil {
		return Overlay{}, fmt.Errorf("--overlay %s: %w", o.Dir, err)
	}
	return l, nil
}
