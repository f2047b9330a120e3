package container

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/msg"
)

// mountImage makes the pristine image view at a.image: attaches the
// image's FUSE mount that newAssembler started, mounts it there if no
// detached mount could be made, or binds the sandbox directory.
func (a *assembler) mountImage() error {
	img := a.cfg.Image
	if img.Format == image.FormatDir {
		if err := bind(fdPath(a.imgF), a.image, true); err != nil {
			return fmt.Errorf("mounting sandbox %s: %w", img.Path, err)
		}
		attr := uint64(unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
		if a.cfg.Writable {
			attr &^= unix.MOUNT_ATTR_RDONLY
			a.log.Verbosef("sandbox %s is writable (--writable)", img.Path)
		}
		if err := setAttr(a.image, attr, true); err != nil {
			return fmt.Errorf("mounting sandbox %s: %w", img.Path, err)
		}
		a.tl.Mark("image-mounted")
		return nil
	}
	if a.res.client != nil {
		err := a.attachShared(a.image)
		if err == nil {
			return nil
		}
		a.log.Debugf("mounting the image itself: %v", err)
	}
	if a.res.server == nil {
		return a.startImage(a.image)
	}
	return a.res.server.Attach(a.image)
}

// startImage mounts the SquashFS image with a FUSE server: detached when
// target is "" (attached to a.image later by mountImage), else on target.
// Where no detached mount can be made it leaves the mount to mountImage.
func (a *assembler) startImage(target string) error {
	img := a.cfg.Image
	bin, err := a.squashfuse()
	if err != nil {
		return err
	}
	srv, err := fuse.Mount(fuse.MountOptions{
		Image: a.imgF, Offset: img.Offset, Target: target,
		UID: a.cfg.User.UID, GID: a.cfg.User.GID, Program: bin,
		Fork: a.fork,
	})
	if target == "" && errors.Is(err, fuse.ErrNoDetached) {
		a.log.Debugf("%v; mounting the image on %s instead", err, stagingDir)
		return nil
	}
	if err != nil {
		return err
	}
	a.res.server = srv
	a.tl.Mark("image-mounted")
	where := target
	if where == "" {
		where = "a detached mount"
	}
	if bin.Fallback != "" {
		a.log.Debugf("%s runs %s in its place for an image it cannot read", bin.Binary, bin.Fallback)
	}
	a.log.Debugf("mounted %s (offset %d) on %s with %s, pid %d", img.Path, img.Offset, where, bin.Binary, srv.Pid)
	return nil
}

// checkRoot reads the root directory once (read): this waits for the FUSE
// server and turns a server that failed (bad image, bad offset) into a
// clear error.
func (a *assembler) checkRoot(read func() error) error {
	if err := read(); err != nil {
		detail := ""
		if a.res.server != nil {
			detail = msg.OneLine(a.res.server.Stderr())
		}
		if detail != "" {
			return fmt.Errorf("reading the root filesystem of %s: %s", a.cfg.Image.Path, detail)
		}
		return fmt.Errorf("reading the root filesystem of %s: %w", a.cfg.Image.Path, err)
	}
	return nil
}

// imageDevice returns the device number of the image's FUSE mount, and
// false when the image is a directory (no FUSE mount).
func (a *assembler) imageDevice() (uint64, bool) {
	if a.cfg.Image.Format == image.FormatDir {
		return 0, false
	}
	var st unix.Stat_t
	if err := unix.Stat(a.image, &st); err != nil {
		return 0, false
	}
	return st.Dev, true
}
