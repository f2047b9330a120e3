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
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fakeroot"
)

// checkSource checks that dir is a directory whose every file and directory
// the calling user can read, by a path mksquashfs can use: mksquashfs would
// otherwise store unreadable files empty with only a warning, and fail on
// paths over PATH_MAX with pages of text. The error names the first such
// file and the real cause. Without access, only that dir is a directory is
// checked: a pack as root in the fakeroot namespace can read whatever the
// tree holds, and the user cannot look.
func checkSource(dir string, access bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("source directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("reading source directory %s: %w", dir, bare(err))
	case !fi.IsDir():
		return fmt.Errorf("source %s is not a directory (launch build packs a directory tree)", dir)
	case !access:
		return nil
	}
	var bad []string
	var cause error
	note := func(p string, err error) {
		if len(bad) == 0 {
			cause = err
		}
		bad = append(bad, p)
	}
	walkErr := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if len(p) >= unix.PathMax {
			note(p, unix.ENAMETOOLONG)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err != nil {
			note(p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			if err := unix.Access(p, unix.R_OK|unix.X_OK); err != nil {
				note(p, err)
				return fs.SkipDir
			}
		case d.Type().IsRegular():
			if err := unix.Access(p, unix.R_OK); err != nil {
				note(p, err)
			}
		}
		return nil
	})
	if walkErr != nil {
		return fmt.Errorf("reading source directory %s: %w", dir, walkErr)
	}
	if len(bad) == 0 {
		return nil
	}
	more := ""
	if len(bad) > 1 {
		more = fmt.Sprintf(" (and %d more file%s)", len(bad)-1, plural(len(bad)-1))
	}
	var errno syscall.Errno
	switch {
	case errors.Is(cause, unix.ENAMETOOLONG):
		return fmt.Errorf("cannot pack %s: file name too long (paths must be shorter than %d bytes)%s", bad[0], unix.PathMax, more)
	case errors.Is(cause, fs.ErrPermission):
		return fmt.Errorf("cannot read %s: permission denied%s; make it readable or remove it from %s", bad[0], more, dir)
	case errors.As(cause, &errno):
		return fmt.Errorf("cannot read %s: %v%s", bad[0], errno, more)
	}
	return fmt.Errorf("cannot read %s%s: %w", bad[0], more, cause)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// mksquashfsArgs are the arguments for packing src into dst. Like Apptainer,
// a build by an unprivileged user makes every file owned by root in the
// image, so the image does not carry the builder's uid; the set-uid and
// set-gid bits of such a build are cleared (a mksquashfs action, so the
// source tree is not touched): a user's set-uid file would otherwise become
// a set-uid-root file wherever the image is unpacked.
//
// The files of meta (when non-nil) are added by pseudo-file definitions,
// each one it replaces left out of src by -e (which takes the rest of the
// arguments), so src itself is never written.
func mksquashfsArgs(src, dst string, euid int, comp string, meta *metaPlan) []string {
	args := []string{src, dst, "-noappend", "-no-progress"}
	if comp != "" {
		args = append(args, "-comp", comp)
	}
	if euid != 0 {
		args = append(args, "-all-root", "-action", "chmod(ug-s)@true")
	}
	if meta != nil && meta.pseudo != "" {
		args = append(args, "-pf", meta.pseudo)
		if len(meta.exclude) > 0 {
			args = append(append(args, "-e"), meta.exclude...)
		}
	}
	return args
}

// mksquashfs packs src into the temporary file out. Its output goes to
// verbose when non-nil, and is otherwise kept for the error message.
//
// With fake (maps with subordinate ranges) it runs as root in the user's
// fakeroot namespace (Fakeroot in Options).
func mksquashfs(ctx context.Context, prog, src, comp string, meta *metaPlan, out *tempFile, verbose io.Writer, fake *fakeroot.Maps) error {
	path := out.procPath()
	var extra []*os.File
	if out.named == "" {
		extra = []*os.File{out.f}
		path = "/proc/self/fd/3"
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	if verbose != nil {
		w = io.MultiWriter(&buf, verbose)
	}
	euid := os.Geteuid()
	if fake != nil {
		euid = 0
	}
	cmd := exec.CommandContext(ctx, prog, mksquashfsArgs(src, path, euid, comp, meta)...)
	cmd.ExtraFiles = extra
	cmd.Stdout, cmd.Stderr = w, w
	var err error
	if fake != nil {
		err = runFakeroot(cmd, fake)
	} else {
		err = runTool(cmd)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s not found (install squashfs-tools, or set tools.mksquashfs in launch.conf)", prog)
	}
	out.f.Sync() //nolint:errcheck // only to learn whether the disk is full
	if isFull(err, buf.String()) {
		return errDiskFull
	}
	return fmt.Errorf("mksquashfs failed (%v): %s", err, lastLines(buf.String(), 3))
}

// runTool runs a helper program (mksquashfs, unsquashfs) to its end. The
// helper gets SIGKILL when launch dies (Pdeathsig), so that a killed build
// leaves no helper running. That signal follows the OS thread that started
// the child, not the process, so the goroutine stays on that thread until
// the helper has ended (see go.dev/issue/27505).
func runTool(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return cmd.Run()
}

// errDiskFull says that a file could not be written because of the file
// size limit or a full disk.
var errDiskFull = errors.New("file too large / disk full")

// isFull reports whether a tool's failure err with output out was caused by
// a full disk or the file size limit (SIGXFSZ kills a tool that ignores it
// not).
func isFull(err error, out string) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGXFSZ {
			return true
		}
	}
	if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	for _, s := range []string{"No space left", "File too large", "Disk quota exceeded"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// lastLines returns the last n non-empty lines of s joined into one line.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, "; ")
}
