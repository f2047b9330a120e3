package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/image"
)

// Sandbox unpacks the SIF or SquashFS image o.Source into the new directory
// o.Out with unsquashfs. An unprivileged user cannot give files away, so the
// extracted files belong to the calling user. The tree is unpacked under a
// temporary name next to o.Out and renamed into place when complete.
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
	out := filepath.Clean(o.Out)
	parent, base := filepath.Dir(out), filepath.Base(out)
	tmp, err := os.MkdirTemp(parent, "."+base+".launch-tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: creating a temporary directory in %s: %w", o.Out, parent, err)
	}
	defer removeTree(tmp)

	o.Log.Infof("Unpacking %s into %s", o.Source, o.Out)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := unsquashfs(ctx, img, rootfs, o); err != nil {
		return wrapWrite(ctx, o.Out, "unpacking "+o.Source, err)
	}
	if err := replaceDir(rootfs, out, tmp, o.Force); err != nil {
		return fmt.Errorf("moving unpacked tree to %s: %w", o.Out, err)
	}
	return nil
}

// unsquashfs extracts the SquashFS of img into dest, which must not exist.
func unsquashfs(ctx context.Context, img *image.Image, dest string, o Options) error {
	args := []string{"-no-progress", "-d", dest, "-o", strconv.FormatInt(img.Offset, 10)}
	if os.Geteuid() != 0 {
		args = append(args, "-user-xattrs") // other xattrs need privilege
	}
	args = append(args, img.Path)
	var buf bytes.Buffer
	var w io.Writer = &buf
	if o.ToolOutput != nil {
		w = io.MultiWriter(&buf, o.ToolOutput)
	}
	cmd := exec.CommandContext(ctx, tool(o.Unsquashfs, "unsquashfs"), args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
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

// removeTree removes dir and everything under it, first making read-only
// directories (as images often have) writable for their owner.
func removeTree(dir string) {
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// FromImage builds the SIF o.Out from the SIF or SquashFS image o.Source:
// its root filesystem is unpacked into a temporary directory and packed
// again (a definition file it keeps comes along).
func FromImage(ctx context.Context, o Options) error {
	if err := CheckOut(o.Out, o.Force, false); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(TmpDir(), "launch-build-")
	if err != nil {
		return fmt.Errorf("making a temporary directory: %w (set LAUNCH_TMPDIR)", err)
	}
	defer removeTree(tmp)
	so := o
	so.Out = filepath.Join(tmp, "rootfs")
	so.Force = false
	if err := Sandbox(ctx, so); err != nil {
		return err
	}
	o.Log.Infof("Repacking the root filesystem of %s", o.Source)
	o.Source = so.Out
	return Build(ctx, o)
}
