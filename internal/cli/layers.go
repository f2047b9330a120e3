package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// layers checks --writable-tmpfs, --overlay and --writable and returns the
// layers over the image (nil for none). It creates a writable overlay
// directory's upper and work directories, as the user.
func layers(f *runFlags, conf *config.Config, img *image.Image, uid int, cwd string) (*container.Layers, error) {
	if f.writable {
		if img.Format != image.FormatDir {
			return nil, fmt.Errorf("--writable needs a sandbox (directory) image, and %s is a %s image: "+
				"use --writable-tmpfs or --overlay DIR for a writable layer over it", img.Path, img.Format)
		}
		if f.writableTmpfs || len(f.overlays) > 0 {
			return nil, errors.New("--writable writes into the sandbox itself and cannot be combined with --writable-tmpfs or --overlay")
		}
		return nil, nil
	}
	if !f.writableTmpfs && len(f.overlays) == 0 {
		return nil, nil
	}
	l := &container.Layers{Tmpfs: f.writableTmpfs, TmpfsSize: conf.Tmpfs.Writable, FuseOverlayfs: conf.Tools.FuseOverlayfs}
	seen := map[string]bool{}
	rw := ""
	for _, v := range f.overlays {
		o, err := parseOverlay(v, cwd)
		if err != nil {
			return nil, err
		}
		if seen[o.Dir] {
			return nil, fmt.Errorf("--overlay %s: the same directory is given twice", o.Dir)
		}
		seen[o.Dir] = true
		if !o.ReadOnly {
			if rw != "" {
				return nil, fmt.Errorf("--overlay %s: only one writable overlay is possible (%s is one already; add :ro to stack it read-only)", o.Dir, rw)
			}
			if f.writableTmpfs {
				return nil, fmt.Errorf("--overlay %s: a writable overlay and --writable-tmpfs both ask for the top layer; add :ro to stack it below", o.Dir)
			}
			rw = o.Dir
		}
		l.Overlays = append(l.Overlays, o)
	}
	// Checked in full before anything is created.
	for _, o := range l.Overlays {
		if err := checkOverlayDir(o); err != nil {
			return nil, fmt.Errorf("--overlay %s: %w", o.Dir, err)
		}
	}
	for _, o := range l.Overlays {
		if !o.ReadOnly {
			if err := prepareOverlay(o.Dir, uid); err != nil {
				return nil, fmt.Errorf("--overlay %s: %w", o.Dir, err)
			}
		} else if err := unix.Access(o.Dir, unix.R_OK|unix.X_OK); err != nil {
			return nil, fmt.Errorf("--overlay %s:ro: %w", o.Dir, explainAccess(o.Dir, err))
		}
	}
	// The writable one lies on top of every read-only one.
	var ordered []container.Overlay
	for _, o := range l.Overlays {
		if o.ReadOnly {
			ordered = append(ordered, o)
		}
	}
	if rw != "" {
		ordered = append(ordered, container.Overlay{Dir: rw})
	}
	l.Overlays = ordered
	return l, nil
}

// parseOverlay reads DIR[:ro|:rw].
func parseOverlay(v, cwd string) (container.Overlay, error) {
	dir, ro := v, false
	if i := strings.LastIndex(v, ":"); i >= 0 {
		switch v[i+1:] {
		case "ro":
			dir, ro = v[:i], true
		case "rw":
			dir = v[:i]
		default:
			return container.Overlay{}, fmt.Errorf("--overlay %s: unknown option %q (want DIR, DIR:ro or DIR:rw)", v, v[i+1:])
		}
	}
	if dir == "" {
		return container.Overlay{}, fmt.Errorf("--overlay %q: empty directory", v)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cwd, dir)
	}
	return container.Overlay{Dir: filepath.Clean(dir), ReadOnly: ro}, nil
}

// checkOverlayDir checks that an --overlay directory is a directory (a
// writable one may be missing: it is made).
func checkOverlayDir(o container.Overlay) error {
	fi, err := os.Stat(o.Dir)
	switch {
	case err == nil && !fi.IsDir():
		return errors.New("not a directory (only overlay directories are supported, not image files)")
	case errors.Is(err, os.ErrNotExist) && !o.ReadOnly:
		return nil
	case err != nil:
		return unwrapPath(err)
	}
	return nil
}

// prepareOverlay checks that dir can be the user's writable layer and makes
// its upper and work directories. dir must be the user's own: writes land
// there owned by them, and nobody else's data is ever changed.
func prepareOverlay(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating it: %w", unwrapPath(err))
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("owned by uid %d, not by you (uid %d): a writable overlay must be your own directory", st.Uid, uid)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err == nil && fs.Flags&unix.ST_RDONLY != 0 {
		return explainAccess(dir, unix.EROFS)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return explainAccess(dir, err)
	}
	for _, sub := range []string{container.OverlayUpper, container.OverlayWork} {
		p := filepath.Join(dir, sub)
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			if errors.Is(err, unix.EROFS) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("its filesystem cannot hold a writable layer (creating %s: %w)", sub, unwrapPath(err))
			}
			return fmt.Errorf("creating %s: %w", sub, unwrapPath(err))
		}
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != uid {
			return fmt.Errorf("%s is not a directory of yours", p)
		}
	}
	return nil
}

// explainAccess turns a failed access(2) into words.
func explainAccess(dir string, err error) error {
	switch {
	case errors.Is(err, unix.EROFS):
		return errors.New("on a read-only filesystem, which cannot hold a writable layer")
	case errors.Is(err, unix.EACCES):
		return errors.New("permission denied (you need read, write and search permission on it)")
	}
	return err
}

// prepareWorkdir checks --workdir and makes the host directories that back
// --scratch and, with --contain, /tmp and /var/tmp: those two mode 1777
// (sticky, as on a host), scratch ones 0700. The workdir may be shared with
// other users (a sticky scratch directory): what is below it is made and
// checked relative to its descriptor, never through a symbolic link, and
// must be directories of the user's own (container.PrepareWorkdir); the
// stage opens them again the same way (mountplan.Op.Beneath).
func prepareWorkdir(f *runFlags, cwd string, uid int, spec *mountplan.Spec) error {
	if f.workdir == "" {
		return nil
	}
	wd := f.workdir
	if !filepath.IsAbs(wd) {
		wd = filepath.Join(cwd, wd)
	}
	wd = filepath.Clean(wd)
	fi, err := os.Stat(wd)
	if err != nil {
		return fmt.Errorf("--workdir %s: %w", wd, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("--workdir %s: not a directory", wd)
	}
	var dests []string
	if f.contain && !spec.Disabled["tmp"] {
		dests = append(dests, "/tmp", "/var/tmp")
	}
	for _, d := range spec.Scratch {
		if err := mountplan.CheckDest(d); err != nil {
			return fmt.Errorf("--scratch %s: %w", d, err)
		}
		dests = append(dests, filepath.Clean(d))
	}
	var dirs []container.WorkdirDir
	for _, d := range dests {
		rel, err := filepath.Rel(wd, mountplan.WorkdirPath(wd, d))
		if err != nil {
			return fmt.Errorf("--workdir %s: %w", wd, err)
		}
		mode := uint32(0o700)
		if d == "/tmp" || d == "/var/tmp" {
			mode = 0o777 | unix.S_ISVTX
		}
		dirs = append(dirs, container.WorkdirDir{Rel: rel, Mode: mode})
	}
	if err := container.PrepareWorkdir(wd, dirs, uid); err != nil {
		return fmt.Errorf("--workdir %s: %w", wd, unwrapPath(err))
	}
	spec.Workdir = wd
	return nil
}
