package container

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/paths"
	"github.com/launch-hpc/launch/internal/rootplan"
)

// targets says, for the root planner, what each op of the plan mounts: a
// bind whose (optional) source is missing mounts nothing, nor does a
// symlink.
func (a *assembler) targets() []rootplan.Target {
	t := make([]rootplan.Target, len(a.cfg.Plan.Ops))
	for i, op := range a.cfg.Plan.Ops {
		switch op.Kind {
		case mountplan.Bind:
			_, ok := a.srcs[i]
			t[i] = rootplan.Target{Mounts: ok, Dir: a.isDir[i]}
		case mountplan.File:
			t[i] = rootplan.Target{Mounts: true}
		case mountplan.Proc, mountplan.Tmpfs, mountplan.Devpts:
			t[i] = rootplan.Target{Mounts: true, Dir: true}
		}
	}
	return t
}

// underlay replaces the image directory at dir (staging side) with a tmpfs
// holding the same entries, each bound from the image, so new mount points
// can be added without touching the image. With a plan (rootplan), an
// entry that an op mounts on is only created, not bound, and a directory
// that needs an underlay too is filled in the same tmpfs, not bound.
func (a *assembler) underlay(dir string, x *rootplan.Index, plan *rootplan.Plan) error {
	rel := strings.TrimPrefix(dir, a.root)
	if rel == "" {
		rel = "/"
	}
	fi, err := os.Stat(filepath.Join(a.image, rel))
	if err != nil {
		return fmt.Errorf("underlay of %s: %w", a.inside(dir), err)
	}
	if _, err := x.List(rel); err != nil {
		return fmt.Errorf("underlay of %s: %w", a.inside(dir), err)
	}
	saved, err := a.saveMounts(dir)
	if err != nil {
		return err
	}
	defer closeAll(saved)
	data := "mode=" + strconv.FormatUint(uint64(fi.Mode().Perm()), 8) + ",size=1m"
	if err := unix.Mount("underlay", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("mounting underlay tmpfs on %s: %w", a.inside(dir), err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("underlay of %s: %w", a.inside(dir), err)
	}
	a.record(mountRec{path: dir, origin: fromTmpfs, underlay: true, dev: st.Dev})
	bound, err := a.fillUnderlay(dir, rel, x, plan)
	if err != nil {
		return err
	}
	if err := a.restoreMounts(saved); err != nil {
		return err
	}
	a.log.Debugf("underlay on %s (%d bound from the image, %d mounts kept)", a.inside(dir), bound, len(saved))
	return nil
}

// fillUnderlay makes in dir, a directory of an underlay tmpfs, the entries
// of the image directory rel (see underlay), and returns how many it bound
// from the image.
func (a *assembler) fillUnderlay(dir, rel string, x *rootplan.Index, plan *rootplan.Plan) (int, error) {
	entries, err := x.List(rel)
	if err != nil {
		return 0, fmt.Errorf("underlay of %s: %w", a.inside(dir), err)
	}
	bound := 0
	for _, e := range entries {
		s, t := filepath.Join(a.image, rel, e.Name()), filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(s)
			if err == nil {
				err = os.Symlink(target, t)
			}
			if err != nil {
				return bound, fmt.Errorf("underlay of %s: %w", a.inside(t), err)
			}
			continue
		}
		if e.IsDir() {
			err = os.Mkdir(t, 0o755)
		} else {
			var f *os.File
			if f, err = os.OpenFile(t, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil {
			return bound, fmt.Errorf("underlay of %s: %w", a.inside(t), err)
		}
		ep := path.Join(rel, e.Name())
		if plan != nil && plan.Under[ep] {
			n, err := a.fillUnderlay(t, ep, x, plan)
			bound += n
			if err != nil {
				return bound, err
			}
			fi, err := os.Stat(s)
			if err == nil {
				err = os.Chmod(t, fi.Mode().Perm())
			}
			if err != nil {
				return bound, fmt.Errorf("underlay of %s: %w", a.inside(t), err)
			}
			continue
		}
		if plan != nil && plan.Covered[ep] {
			continue
		}
		if err := bind(s, t, false); err != nil {
			return bound, fmt.Errorf("underlay of %s: %w", a.inside(t), err)
		}
		bound++
		// A new entry of the new underlay: no record lies at or below it.
		a.mounts = append(a.mounts, mountRec{path: t, origin: fromImage})
	}
	return bound, nil
}

// savedMount is a mount that an underlay is about to cover, held open so
// it can be put back on top, with the records of the mounts below it
// (which a recursive bind brings back with it).
type savedMount struct {
	rec   mountRec
	below []mountRec
	dir   bool
	f     *os.File
}

// saveMounts opens the outermost mounts made so far below dir.
func (a *assembler) saveMounts(dir string) ([]savedMount, error) {
	var out []savedMount
	for _, m := range a.mounts {
		if !paths.Below(m.path, dir) {
			continue
		}
		nested := false
		for _, o := range out {
			if paths.Below(m.path, o.rec.path) {
				nested = true
			}
		}
		if nested {
			continue
		}
		fd, err := unix.Open(m.path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("keeping mount %s: %w", a.inside(m.path), err)
		}
		var st unix.Stat_t
		_ = unix.Fstat(fd, &st)
		var below []mountRec
		for _, r := range a.mounts {
			if paths.Below(r.path, m.path) {
				below = append(below, r)
			}
		}
		out = append(out, savedMount{rec: m, below: below, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR, f: os.NewFile(uintptr(fd), m.path)})
	}
	return out, nil
}

// restoreMounts binds saved mounts back at their paths.
func (a *assembler) restoreMounts(saved []savedMount) error {
	for _, s := range saved {
		p := s.rec.path
		mk := p
		if !s.dir {
			mk = filepath.Dir(p)
		}
		if err := os.MkdirAll(mk, 0o755); err != nil {
			return fmt.Errorf("restoring mount %s: %w", a.inside(p), err)
		}
		if !s.dir && !exists(p) {
			fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return fmt.Errorf("restoring mount %s: %w", a.inside(p), err)
			}
			unix.Close(fd)
		}
		if err := bind(fdPath(s.f), p, true); err != nil {
			return fmt.Errorf("restoring mount %s: %w", a.inside(p), err)
		}
		// Back on top: the underlay's entry there is covered again.
		a.record(s.rec)
		a.mounts = append(a.mounts, s.below...)
	}
	return nil
}

func closeAll(saved []savedMount) {
	for _, s := range saved {
		s.f.Close()
	}
}
