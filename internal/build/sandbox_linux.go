package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// Sandbox unpacks the SIF or SquashFS image o.Source into the new directory
// o.Out with unsquashfs. An unprivileged user cannot give files away, so the
// extracted files belong to the calling user. The tree is unpacked under a
// temporary name next to o.Out, in a directory only this user can enter,
// and renamed into place when complete. Unless o.KeepPrivileged, set-uid and
// set-gid bits are cleared, device nodes are left out and only user.*
// extended attributes are kept (no file capabilities) before anyone else can
// reach the tree.
func Sandbox(ctx context.Context, o Options) error {
	img, err := image.Open(o.Source)
	if err != nil {
		return err
	}
	if img.Format == image.FormatDir {
		return fmt.Errorf("image %s is already a directory (sandbox); copy it instead", o.Source)
	}
	if err := CheckOut(o.Out, o.Force, true); err != nil {
		return err
	}
	if !o.NoSweep {
		SweepStale(TmpDir(), o.Out, o.Log)
	}
	out := filepath.Clean(o.Out)
	parent, base := filepath.Dir(out), filepath.Base(out)
	tmp, err := tmptree.MkdirTemp(parent, tmptree.Hidden(base))
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Out, err)
	}
	defer tmp.Remove()

	o.Log.Infof("Unpacking %s into %s", o.Source, o.Out)
	rootfs := filepath.Join(tmp.Path, "rootfs")
	if err := unsquashfs(ctx, img, rootfs, o); err != nil {
		return wrapWrite(ctx, o.Out, "unpacking "+o.Source, err)
	}
	if !o.KeepPrivileged {
		d, err := dropPrivileged(rootfs)
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", o.Source, err)
		}
		if d.setid > 0 || d.devices > 0 {
			o.Log.Infof("Cleared the set-uid/set-gid bits of %d file(s) and left out %d device node(s) (--keep-privileged keeps them)", d.setid, d.devices)
		}
	}
	if err := replaceDir(rootfs, out, tmp.Path, o.Force); err != nil {
		return fmt.Errorf("moving unpacked tree to %s: %w", o.Out, err)
	}
	return nil
}

// unsquashfs extracts the SquashFS of img into dest, which must not exist.
func unsquashfs(ctx context.Context, img *image.Image, dest string, o Options) error {
	args := []string{"-no-progress", "-d", dest, "-o", strconv.FormatInt(img.Offset, 10)}
	if os.Geteuid() != 0 || !o.KeepPrivileged {
		// Other xattrs need privilege, and security.capability is
		// privilege.
		args = append(args, "-user-xattrs")
	}
	args = append(args, img.Path)
	var buf bytes.Buffer
	var w io.Writer = &buf
	if o.ToolOutput != nil {
		w = io.MultiWriter(&buf, o.ToolOutput)
	}
	cmd := exec.CommandContext(ctx, tool(o.Unsquashfs, "unsquashfs"), args...)
	cmd.Stdout, cmd.Stderr = w, w
	err := runTool(cmd)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return nil
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s not found (install squashfs-tools, or set tools.unsquashfs in launch.conf)", tool(o.Unsquashfs, "unsquashfs"))
	case isFull(err, buf.String()):
		return errDiskFull
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		// Non-fatal errors, e.g. device nodes an unprivileged user
		// cannot create: the tree is there, say what is missing.
		o.Log.Warnf("unsquashfs could not extract everything: %s", lastLines(buf.String(), 1))
		return nil
	}
	return fmt.Errorf("unsquashfs failed (%v): %s", err, lastLines(buf.String(), 3))
}

// replaceDir renames src to dst. With force an existing dst is first moved
// aside into trashDir (removed by the caller) so dst is never half there.
func replaceDir(src, dst, trashDir string, force bool) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if !force {
		return fmt.Errorf("%s already exists, use --force to replace it", dst)
	}
	if err := os.Rename(dst, filepath.Join(trashDir, "old")); err != nil {
		return err
	}
	return os.Rename(src, dst)
}

// FromImage builds the SIF o.Out from the SIF or SquashFS image o.Source:
// its root filesystem is unpacked into a temporary directory and packed
// again (a definition file it keeps comes along).
func FromImage(ctx context.Context, o Options) error {
	if err := CheckOut(o.Out, o.Force, false); err != nil {
		return err
	}
	if !o.NoSweep {
		SweepStale(TmpDir(), o.Out, o.Log)
	}
	tmp, err := tmptree.MkdirTemp(TmpDir(), tmptree.KindBuild)
	if err != nil {
		return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
	}
	defer tmp.Remove()
	so := o
	so.Out = filepath.Join(tmp.Path, "rootfs")
	so.Force, so.NoSweep = false, true
	if err := Sandbox(ctx, so); err != nil {
		return err
	}
	o.Log.Infof("Repacking the root filesystem of %s", o.Source)
	if o.Origin == "" {
		o.Origin = o.Source
	}
	o.Source, o.NoSweep = so.Out, true
	return Build(ctx, o)
}

// ReplaceDir renames the complete tree src to dst; with force an existing
// dst is first moved aside into trashDir (which the caller removes), so dst
// is never half there.
func ReplaceDir(src, dst, trashDir string, force bool) error {
	return replaceDir(src, dst, trashDir, force)
}
