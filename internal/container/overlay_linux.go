package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
)

// openLayers opens every --overlay directory while the host's view is still
// intact, and locks it for the container's life: exclusively when it is
// used read-write, shared when read-only, so one writable overlay never
// serves two running containers (nor one that reads it as a lower layer).
// The locks are descriptors the stage holds (started.locks), never closed:
// they go when the stage exits, after every process that could write to the
// layer is gone.
func (a *assembler) openLayers() error {
	l := a.cfg.Layers
	if l == nil {
		return nil
	}
	for _, o := range l.Overlays {
		if o.Image != "" {
			f, lock, err := openOverlayImage(o)
			if err != nil {
				return err
			}
			a.layerFDs = append(a.layerFDs, f)
			a.res.held = append(a.res.held, f)
			a.res.locks = append(a.res.locks, lock)
			continue
		}
		fd, err := unix.Open(o.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("overlay %s: %w", o.Dir, err)
		}
		a.layerFDs = append(a.layerFDs, os.NewFile(uintptr(fd), o.Dir))
		a.res.held = append(a.res.held, a.layerFDs[len(a.layerFDs)-1])
		lock, err := lockOverlay(o)
		if err != nil {
			return err
		}
		if lock >= 0 {
			a.res.locks = append(a.res.locks, lock)
		}
	}
	return nil
}

// lockOverlay takes the overlay's lock (see openLayers) and returns the
// locked descriptor (-1 when a read-only overlay has no lock to take).
func lockOverlay(o Overlay) (int, error) {
	lock := filepath.Join(o.Dir, OverlayLock)
	flags := unix.O_RDWR | unix.O_CREAT
	if o.ReadOnly {
		flags = unix.O_RDONLY
	}
	fd, err := unix.Open(lock, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		if o.ReadOnly && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES)) {
			// Never used read-write by launch, or a lock file we may not
			// read: nobody can be writing through launch then, or the
			// owner chose not to let readers hold it up.
			return -1, nil
		}
		return -1, fmt.Errorf("overlay %s: opening lock file: %w", o.Dir, err)
	}
	if err := takeLock(fd, o); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// mountLayers makes the container's root at a.root an overlay of the layers
// over the image at a.image. Mount points the plan needs and the image
// lacks are made beforehand in a small tmpfs layer just above the image
// and the read-only overlays ("mount point layer"), so nothing is ever
// written into a persistent overlay directory for them.
func (a *assembler) mountLayers() error {
	l := a.cfg.Layers
	base := filepath.Join(stagingDir, "layers")
	mp := filepath.Join(base, "mp")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", mp, err)
	}
	if err := unix.Mount("mountpoints", mp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=4m"); err != nil {
		return fmt.Errorf("mounting mount point layer: %w", err)
	}
	if err := a.makeMountPoints(mp); err != nil {
		return err
	}
	lower := []string{mp}
	var upper, work, what string
	for i := len(l.Overlays) - 1; i >= 0; i-- {
		o := l.Overlays[i]
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		if o.Image != "" {
			var err error
			if dir, err = a.mountOverlayImage(i, o, dir); err != nil {
				return err
			}
		} else if err := bind(fdPath(a.layerFDs[i]), dir, false); err != nil {
			return fmt.Errorf("overlay %s: %w", o.Dir, err)
		}
		if !o.ReadOnly {
			upper, work = filepath.Join(dir, OverlayUpper), filepath.Join(dir, OverlayWork)
			what = "overlay directory " + o.Dir
			if o.Image != "" {
				what = "overlay image " + o.Dir
			}
			continue
		}
		// Not through a link: an image's upper could point anywhere.
		if fi, err := os.Lstat(filepath.Join(dir, OverlayUpper)); err == nil && fi.IsDir() {
			dir = filepath.Join(dir, OverlayUpper)
		}
		lower = append(lower, dir)
	}
	lower = append(lower, a.image)
	if l.Tmpfs {
		t := filepath.Join(base, "tmpfs")
		if err := os.Mkdir(t, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
		if err := unix.Mount("writable", t, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size="+l.TmpfsSize); err != nil {
			return fmt.Errorf("mounting the writable tmpfs (size %s, launch.conf tmpfs.writable): %w", l.TmpfsSize, err)
		}
		upper, work = filepath.Join(t, OverlayUpper), filepath.Join(t, OverlayWork)
		for _, d := range []string{upper, work} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", d, err)
			}
		}
		what = "tmpfs of size " + l.TmpfsSize + " (launch.conf tmpfs.writable)"
	}
	if err := a.mountOverlay(lower, upper, work); err != nil {
		if what != "" {
			return fmt.Errorf("writable layer on %s: %w", what, err)
		}
		return err
	}
	if upper != "" {
		a.log.Verbosef("writable layer: %s, served by %s", what, a.layerEngine)
	} else {
		a.log.Verbosef("read-only overlays served by %s", a.layerEngine)
	}
	origin := fromLayers
	if l.Tmpfs {
		origin = fromTmpfs // a stray mount point goes to the tmpfs, gone after the run
	}
	a.mounts = append(a.mounts, mountRec{path: a.root, origin: origin})
	return nil
}

// mountOverlay mounts lower (topmost first) with upper/work ("" for a
// read-only overlay) on a.root. Kernel overlayfs is used where it can work:
// for root, for read-only layers, and for an image whose root directory is
// the user's own (a sandbox they unpacked). Other users get fuse-overlayfs,
// which can show the image's root-owned files as theirs and so copy them up;
// kernel overlayfs cannot, with an identity map.
func (a *assembler) mountOverlay(lower []string, upper, work string) error {
	useFuse := upper != "" && a.cfg.User.UID != 0 && !ownedBy(a.image, a.cfg.User.UID)
	// Where fuse-overlayfs could not make whiteout devices (on fuse2fs),
	// it made .wh. files, which only it reads.
	imageLayers := a.cfg.Layers.hasImage(ImageExt3)
	useFuse = useFuse || imageLayers
	var bin string
	if useFuse {
		var err error
		if bin, err = fuse.FindFuseOverlayfs(a.cfg.Layers.FuseOverlayfs); err != nil {
			a.log.Warnf("%v; using kernel overlayfs: only what you own in the image can be changed", err)
			useFuse = false
		}
	}
	if !useFuse {
		kerr := kernelOverlay(lower, upper, work, a.root)
		if kerr == nil {
			a.layerEngine = "kernel overlayfs"
			return nil
		}
		if upper == "" {
			return fmt.Errorf("mounting read-only overlays: %w", kerr)
		}
		var err error
		if bin, err = fuse.FindFuseOverlayfs(a.cfg.Layers.FuseOverlayfs); err != nil {
			return fmt.Errorf("kernel overlayfs refused it (%w) and %v", kerr, err)
		}
		a.log.Verbosef("kernel overlayfs refused the writable layer (%v); trying fuse-overlayfs", kerr)
	}
	srv, err := fuse.MountOverlay(fuse.OverlayOptions{
		Lower: lower, Upper: upper, Work: work, Target: a.root,
		UID: a.cfg.User.UID, GID: a.cfg.User.GID, Binary: bin, Fork: a.fork,
	})
	if err != nil {
		return err
	}
	a.res.overlay = srv
	a.layerEngine = bin + " (pid " + strconv.Itoa(srv.Pid) + ")"
	if _, err := os.ReadDir(a.root); err != nil {
		detail := msg.OneLine(srv.Stderr())
		if detail == "" {
			detail = err.Error()
		}
		return fmt.Errorf("%s: %s", bin, detail)
	}
	return nil
}

// kernelOverlay mounts a kernel overlayfs, with user xattrs (needed in a
// user namespace) when the kernel knows them.
func kernelOverlay(lower []string, upper, work, target string) error {
	data := "lowerdir=" + strings.Join(lower, ":")
	if upper != "" {
		data += ",upperdir=" + upper + ",workdir=" + work
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	err := unix.Mount("overlay", target, "overlay", flags, data+",userxattr")
	if errors.Is(err, unix.EINVAL) {
		if err2 := unix.Mount("overlay", target, "overlay", flags, data); err2 == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("%w%s", err, upperFSHint(upper))
	}
	return nil
}

// upperFSHint names the filesystem of the writable layer, the usual culprit
// when an overlay cannot be mounted.
func upperFSHint(upper string) string {
	if upper == "" {
		return ""
	}
	var st unix.Statfs_t
	if unix.Statfs(upper, &st) != nil {
		return ""
	}
	return fmt.Sprintf(" (the writable layer is on a filesystem of type 0x%x, which may not support being an overlay's upper layer)", st.Type)
}

// makeMountPoints creates, in the mount point layer mp, every mount point of
// the plan that the image lacks, with the image's modes (and, for root,
// owners) on the directories above it, so the overlay shows them unchanged.
func (a *assembler) makeMountPoints(mp string) error {
	if fi, err := os.Stat(a.image); err == nil {
		_ = os.Chmod(mp, fi.Mode().Perm())
	}
	for i, op := range a.cfg.Plan.Ops {
		dir := true
		switch op.Kind {
		case mountplan.Symlink:
			continue
		case mountplan.File:
			dir = false
		case mountplan.Bind:
			if _, ok := a.srcs[i]; !ok {
				continue
			}
			dir = a.isDir[i]
		}
		p, err := securejoin.SecureJoin(a.image, op.Dest)
		if err != nil || exists(p) {
			continue
		}
		rel := strings.TrimPrefix(p, a.image)
		parts := strings.Split(strings.Trim(rel, "/"), "/")
		img, cur := a.image, mp
		for j, name := range parts {
			img, cur = filepath.Join(img, name), filepath.Join(cur, name)
			last := j == len(parts)-1
			if exists(cur) {
				continue
			}
			if last && !dir {
				if err := os.WriteFile(cur, nil, 0o644); err != nil {
					return fmt.Errorf("creating mount point %s: %w", op.Dest, err)
				}
				continue
			}
			if err := os.Mkdir(cur, 0o755); err != nil {
				return fmt.Errorf("creating mount point %s: %w", op.Dest, err)
			}
			var st unix.Stat_t
			if !last && unix.Stat(img, &st) == nil {
				_ = unix.Chmod(cur, st.Mode&0o7777)
				if a.cfg.User.UID == 0 {
					_ = os.Lchown(cur, int(st.Uid), int(st.Gid))
				}
			}
		}
	}
	return nil
}

// ownedBy reports whether path belongs to uid.
func ownedBy(path string, uid int) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && int(st.Uid) == uid
}
