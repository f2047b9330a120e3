package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// imageIndex answers what the pristine image view holds, from directory
// listings where it has read them and from lstat(2) otherwise. On a fresh
// FUSE mount every answer the kernel has not cached is a round trip to the
// server, which serves one request at a time; a listing read once (an
// underlay needs it anyway) answers every later question about its entries.
type imageIndex struct {
	root  string                            // the pristine image view
	lists map[string][]os.DirEntry          // image directory ("/", "/etc") → entries, sorted
	types map[string]map[string]fs.FileMode // the same, name → type bits
}

func newImageIndex(root string) *imageIndex {
	return &imageIndex{root: root, lists: map[string][]os.DirEntry{}, types: map[string]map[string]fs.FileMode{}}
}

// list returns the entries of the image directory dir, read once.
func (x *imageIndex) list(dir string) ([]os.DirEntry, error) {
	if l, ok := x.lists[dir]; ok {
		return l, nil
	}
	l, err := os.ReadDir(filepath.Join(x.root, dir))
	if err != nil {
		return nil, err
	}
	m := make(map[string]fs.FileMode, len(l))
	for _, e := range l {
		m[e.Name()] = e.Type()
	}
	x.lists[dir], x.types[dir] = l, m
	return l, nil
}

// lookup returns the type of the image's entry p (an absolute, clean path
// other than "/") and whether there is one. Symbolic links are not followed.
func (x *imageIndex) lookup(p string) (fs.FileMode, bool, error) {
	if m, ok := x.types[path.Dir(p)]; ok {
		t, found := m[path.Base(p)]
		return t, found, nil
	}
	fi, err := os.Lstat(filepath.Join(x.root, p))
	switch {
	case err == nil:
		return fi.Mode().Type(), true, nil
	case errors.Is(err, fs.ErrNotExist):
		return 0, false, nil
	}
	return 0, false, err
}

// underlayPlan is what planUnderlays found: which image directories get an
// underlay before the plan is applied, and which image entries an op of the
// plan mounts on. Paths are image paths ("/", "/etc", "/etc/passwd").
type underlayPlan struct {
	dirs    []string        // directories to underlay, parents first
	under   map[string]bool // the same, as a set
	covered map[string]bool // entries an op mounts on
}

// planUnderlays finds, before any mount is made, every image directory in
// which the plan needs a mount point that the image lacks: each gets its
// underlay at once, so no mount of the plan ever has to be saved and put
// back on top of a later underlay, and an underlay does not bind from the
// image what an op mounts on anyway, nor a directory that gets its own
// underlay. mounts(i) says whether op i mounts something (a bind whose
// source is missing does not) and whether on a directory.
//
// An op is planned only when no earlier op mounts on its destination or a
// directory above it, and when its destination does not lead through a
// symbolic link in the image: such mount points depend on what is mounted
// by then, and ensure finds them when the op is applied (with an underlay
// made then, if one is needed).
func planUnderlays(ops []mountplan.Op, mounts func(i int) (mounts, dir bool), x *imageIndex) underlayPlan {
	p := underlayPlan{under: map[string]bool{}, covered: map[string]bool{}}
	var earlier []string
	for i, op := range ops {
		ok, dir := mounts(i)
		if !ok || !path.IsAbs(op.Dest) {
			continue
		}
		dest := path.Clean(op.Dest)
		blocked := dest == "/"
		for _, e := range earlier {
			if dest == e || strings.HasPrefix(dest, strings.TrimSuffix(e, "/")+"/") {
				blocked = true
				break
			}
		}
		earlier = append(earlier, dest)
		if blocked {
			continue
		}
		cur := "/"
		for rest := dest[1:]; ; {
			name, more, _ := strings.Cut(rest, "/")
			next := path.Join(cur, name)
			t, found, err := x.lookup(next)
			if err != nil {
				break // ensure reports what is wrong, if anything
			}
			if !found {
				// An unreadable directory is left to ensure, which reports it.
				if _, err := x.list(cur); err == nil && !p.under[cur] {
					p.under[cur] = true
					p.dirs = append(p.dirs, cur)
				}
				break
			}
			if t&fs.ModeSymlink != 0 {
				break
			}
			if more == "" {
				if t.IsDir() == dir {
					p.covered[next] = true
				}
				break
			}
			if !t.IsDir() {
				break
			}
			cur, rest = next, more
		}
	}
	// A later op that covers a directory (or one of its parents) makes an
	// underlay there pointless, and impossible when the covered entry sits
	// in another underlay, where it is only created, empty: the mount
	// points below it are left to ensure, when their ops are applied.
	dirs := p.dirs[:0]
	for _, d := range p.dirs {
		if underCovered(d, p.covered) {
			delete(p.under, d)
			continue
		}
		dirs = append(dirs, d)
	}
	p.dirs = dirs
	sort.SliceStable(p.dirs, func(i, j int) bool { return depth(p.dirs[i]) < depth(p.dirs[j]) })
	return p
}

// underCovered reports whether d or one of its parents is in covered.
func underCovered(d string, covered map[string]bool) bool {
	for c := d; ; c = path.Dir(c) {
		if covered[c] {
			return true
		}
		if c == "/" {
			return false
		}
	}
}

// depth is the number of components of an absolute clean path ("/" has 0).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// opMounts says whether op i mounts something, and whether on a directory.
func (a *assembler) opMounts(i int) (mounts, dir bool) {
	switch a.cfg.Plan.Ops[i].Kind {
	case mountplan.Bind:
		_, ok := a.srcs[i]
		return ok, a.isDir[i]
	case mountplan.File:
		return true, false
	case mountplan.Proc, mountplan.Tmpfs, mountplan.Devpts:
		return true, true
	}
	return false, false
}

// underlay replaces the image directory at dir (staging side) with a tmpfs
// holding the same entries, each bound from the image, so new mount points
// can be added without touching the image. With a plan (planUnderlays), an
// entry that an op mounts on is only created, not bound, and a directory
// that needs an underlay too is filled in the same tmpfs, not bound.
func (a *assembler) underlay(dir string, x *imageIndex, plan *underlayPlan) error {
	rel := strings.TrimPrefix(dir, a.root)
	if rel == "" {
		rel = "/"
	}
	fi, err := os.Stat(filepath.Join(a.image, rel))
	if err != nil {
		return fmt.Errorf("underlay of %s: %w", a.inside(dir), err)
	}
	if _, err := x.list(rel); err != nil {
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
func (a *assembler) fillUnderlay(dir, rel string, x *imageIndex, plan *underlayPlan) (int, error) {
	entries, err := x.list(rel)
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
		if plan != nil && plan.under[ep] {
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
		if plan != nil && plan.covered[ep] {
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
		if !strings.HasPrefix(m.path, dir+"/") {
			continue
		}
		nested := false
		for _, o := range out {
			if strings.HasPrefix(m.path, o.rec.path+"/") {
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
			if strings.HasPrefix(r.path, m.path+"/") {
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
