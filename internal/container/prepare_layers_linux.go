package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/runspec"
)

// workdirPlan is what --workdir needs made: the directories below it.
type workdirPlan struct {
	wd   string // "" for no --workdir
	dirs []WorkdirDir
}

// checkWorkdir checks --workdir and says which host directories below it
// back --scratch and, with --contain, /tmp and /var/tmp: those two mode
// 1777 (sticky, as on a host), scratch ones 0700. It sets ps.Workdir. The
// directories are made by make, once everything else is checked.
func checkWorkdir(s *runspec.Spec, ps *mountplan.Spec) (workdirPlan, error) {
	wd := s.Workdir
	if wd == "" {
		return workdirPlan{}, nil
	}
	fi, err := os.Stat(wd)
	if err != nil {
		return workdirPlan{}, fmt.Errorf("--workdir %s: %w", wd, unwrapPath(err))
	}
	if !fi.IsDir() {
		return workdirPlan{}, fmt.Errorf("--workdir %s: not a directory", wd)
	}
	var dests []string
	if s.Contain && !ps.Disabled["tmp"] {
		dests = append(dests, "/tmp", "/var/tmp")
	}
	for _, d := range s.Scratch { // checked by runspec.Validate
		dests = append(dests, filepath.Clean(d))
	}
	p := workdirPlan{wd: wd}
	for _, d := range dests {
		rel, err := filepath.Rel(wd, mountplan.WorkdirPath(wd, d))
		if err != nil {
			return workdirPlan{}, fmt.Errorf("--workdir %s: %w", wd, err)
		}
		mode := uint32(0o700)
		if d == "/tmp" || d == "/var/tmp" {
			mode = 0o777 | unix.S_ISVTX
		}
		p.dirs = append(p.dirs, WorkdirDir{Rel: rel, Mode: mode})
	}
	ps.Workdir = wd
	return p, nil
}

// make makes the directories below the workdir, as the user uid. The
// workdir may be shared with other users (a sticky scratch directory): what
// is below it is made and checked relative to its descriptor, never through
// a symbolic link, and must be directories of the user's own
// (PrepareWorkdir); the stage opens them again the same way
// (mountplan.Op.Beneath).
func (p workdirPlan) make(uid int) error {
	if p.wd == "" {
		return nil
	}
	if err := PrepareWorkdir(p.wd, p.dirs, uid); err != nil {
		return fmt.Errorf("--workdir %s: %w", p.wd, unwrapPath(err))
	}
	return nil
}

// layerPlan is the layers over the image, and the writable overlay
// directory to make ready.
type layerPlan struct {
	layers *Layers // nil for none
	rw     string  // the writable --overlay directory, "" for none
}

// checkLayers checks the --overlay directories and image files on the
// host and returns the layers over the image img (--writable-tmpfs,
// --overlay, a SIF's overlay partition; none with --writable on a
// sandbox): the writable one on top of every read-only one, a SIF's
// read-only partition lowest. A writable directory's upper and work
// directories are made by make.
func checkLayers(s *runspec.Spec, img *image.Image, uid int, log *msg.Logger) (layerPlan, error) {
	if s.Writable && img.Format == image.FormatDir {
		return layerPlan{}, nil
	}
	sif, err := sifOverlay(img, s.Writable, uid, log)
	if err != nil {
		return layerPlan{}, err
	}
	if sif == nil && !s.WritableTmpfs && len(s.Overlays) == 0 {
		return layerPlan{}, nil
	}
	conf := s.Site
	l := &Layers{Tmpfs: s.WritableTmpfs, TmpfsSize: conf.Tmpfs.Writable, FuseOverlayfs: conf.Tools.FuseOverlayfs}
	if sif != nil {
		l.Overlays = append(l.Overlays, *sif)
	}
	// Checked in full before anything is made.
	images := map[int]Overlay{}
	for i, o := range s.Overlays {
		fi, err := os.Lstat(o.Dir)
		if err == nil && !fi.IsDir() && !(fi.Mode()&os.ModeSymlink != 0 && isDirPath(o.Dir)) {
			if images[i], err = overlayImage(o, uid, log); err != nil {
				return layerPlan{}, err
			}
			continue
		}
		if err := checkOverlayDir(o); err != nil {
			return layerPlan{}, fmt.Errorf("--overlay %s: %w", o.Dir, err)
		}
	}
	p := layerPlan{layers: l}
	var rwImage *Overlay
	for i, o := range s.Overlays {
		if im, ok := images[i]; ok {
			if o.ReadOnly {
				l.Overlays = append(l.Overlays, im)
			} else {
				rwImage = &im
			}
			continue
		}
		if !o.ReadOnly {
			p.rw = o.Dir
			continue
		}
		if err := unix.Access(o.Dir, unix.R_OK|unix.X_OK); err != nil {
			return layerPlan{}, fmt.Errorf("--overlay %s:ro: %w", o.Dir, explainAccess(o.Dir, err))
		}
		l.Overlays = append(l.Overlays, Overlay{Dir: o.Dir, ReadOnly: true})
	}
	if p.rw != "" {
		l.Overlays = append(l.Overlays, Overlay{Dir: p.rw})
	}
	if rwImage != nil {
		l.Overlays = append(l.Overlays, *rwImage)
	}
	return p, nil
}

// make makes the writable overlay directory ready, as the user uid.
func (p layerPlan) make(uid int) error {
	if p.rw == "" {
		return nil
	}
	if err := prepareOverlay(p.rw, uid); err != nil {
		return fmt.Errorf("--overlay %s: %w", p.rw, err)
	}
	return nil
}

// checkOverlayDir checks that an --overlay directory is a directory (a
// writable one may be missing: it is made).
func checkOverlayDir(o runspec.Overlay) error {
	fi, err := os.Stat(o.Dir)
	switch {
	case err == nil && !fi.IsDir():
		return errors.New("not a directory, an ext3 or a SquashFS image file")
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
	for _, sub := range []string{OverlayUpper, OverlayWork} {
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

// isDirPath reports whether path (a symbolic link) leads to a directory.
func isDirPath(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
