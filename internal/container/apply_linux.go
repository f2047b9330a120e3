package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/mountplan"
)

// apply performs one op of the plan.
func (a *assembler) apply(i int, op mountplan.Op) error {
	switch op.Kind {
	case mountplan.Bind:
		src, ok := a.srcs[i]
		if !ok {
			a.log.Debugf("skipping %s: source missing", op)
			return nil
		}
		dst, err := a.ensure(op.Dest, a.isDir[i])
		if err != nil {
			return err
		}
		if err := bind(fdPath(src), dst, true); err != nil {
			return fmt.Errorf("binding %s on %s: %w", op.Source, op.Dest, err)
		}
		if op.ReadOnly {
			if err := setAttr(dst, unix.MOUNT_ATTR_RDONLY, true); err != nil {
				return fmt.Errorf("making %s read-only: %w", op.Dest, err)
			}
		}
		a.record(mountRec{path: dst, origin: neverCreate})
	case mountplan.Proc:
		dst, err := a.ensure(op.Dest, true)
		if err != nil {
			return err
		}
		if err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting proc on %s: %w", op.Dest, err)
		}
		a.record(mountRec{path: dst, origin: neverCreate})
	case mountplan.Tmpfs:
		dst, err := a.ensure(op.Dest, true)
		if err != nil {
			return err
		}
		mode := op.Mode
		if mode == "" {
			mode = "1777"
		}
		data := "mode=" + mode
		if op.Size != "" {
			data += ",size=" + op.Size
		}
		if err := unix.Mount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
			return fmt.Errorf("mounting tmpfs on %s: %w", op.Dest, err)
		}
		a.record(mountRec{path: dst, origin: fromTmpfs})
	case mountplan.Devpts:
		dst, err := a.ensure(op.Dest, true)
		if err != nil {
			return err
		}
		if err := unix.Mount("devpts", dst, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return fmt.Errorf("mounting devpts on %s: %w", op.Dest, err)
		}
		a.record(mountRec{path: dst, origin: neverCreate})
	case mountplan.Symlink:
		if err := a.symlink(op.Source, op.Dest); err != nil {
			return err
		}
	case mountplan.File:
		content, err := a.generate(op.Gen)
		if err != nil {
			return err
		}
		dst, err := a.ensure(op.Dest, false)
		if err != nil {
			return err
		}
		if u, rel, ok := a.inUnderlay(dst); ok {
			// The mount point is a file of an underlay, which is made
			// read-only at the end: the content goes there, no mount needed.
			if err := writeInTmpfs(u.path, u.dev, rel, content); err != nil {
				return fmt.Errorf("writing generated %s: %w", op.Dest, err)
			}
			a.log.Debugf("wrote %s into its underlay", op)
			return nil
		}
		fd, err := a.generatedFile(op.Gen, content)
		if err != nil {
			return fmt.Errorf("writing generated %s: %w", op.Dest, err)
		}
		err = bind("/proc/self/fd/"+strconv.Itoa(fd), dst, false)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("binding generated %s: %w", op.Dest, err)
		}
		if err := setAttr(dst, unix.MOUNT_ATTR_RDONLY, false); err != nil {
			return fmt.Errorf("making %s read-only: %w", op.Dest, err)
		}
		a.record(mountRec{path: dst, origin: neverCreate})
	default:
		return fmt.Errorf("unknown mount kind %q for %s", op.Kind, op.Dest)
	}
	a.log.Debugf("mounted %s", op)
	return nil
}

// symlink makes dest inside the new root a symbolic link to target. Its
// directory must be one of our own tmpfs mounts (such as --contain's /dev):
// links are never added to the image or to a host directory.
func (a *assembler) symlink(target, dest string) error {
	dir, err := securejoin.SecureJoin(a.root, filepath.Dir(dest))
	if err != nil {
		return fmt.Errorf("resolving %s in the container: %w", filepath.Dir(dest), err)
	}
	if a.originOf(dir) != fromTmpfs {
		return fmt.Errorf("cannot create symlink %s: %s is not a tmpfs of launch", dest, a.inside(dir))
	}
	if err := os.Symlink(target, filepath.Join(dir, filepath.Base(dest))); err != nil {
		return fmt.Errorf("creating symlink %s: %w", dest, err)
	}
	return nil
}

// mountFiles mounts, once, the tmpfs that generated files are bound from
// (the staging tmpfs, being unbindable, cannot be a bind's source), and
// keeps a descriptor of it.
func (a *assembler) mountFiles() error {
	if a.filesDir != nil {
		return nil
	}
	if err := os.Mkdir(a.files, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", a.files, err)
	}
	if err := unix.Mount("launch", a.files, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, stagingOpts); err != nil {
		return fmt.Errorf("mounting a tmpfs for generated files on %s: %w", a.files, err)
	}
	fd, err := openTmpfsDir(a.files)
	if err != nil {
		return fmt.Errorf("opening the tmpfs for generated files: %w", err)
	}
	a.filesDir = os.NewFile(uintptr(fd), a.files)
	return nil
}

// generatedFile makes the generated file name with content in the tmpfs
// of generated files, through that tmpfs's descriptor (a new file, never
// through a link), and returns its descriptor, which a bind can use.
func (a *assembler) generatedFile(name string, content []byte) (int, error) {
	if err := a.mountFiles(); err != nil {
		return -1, err
	}
	return createInTmpfs(int(a.filesDir.Fd()), name, content)
}

// generate returns the content of a generated file.
func (a *assembler) generate(gen string) ([]byte, error) {
	base := "/etc/passwd"
	if gen == mountplan.GenGroup {
		base = "/etc/group"
	}
	p, err := securejoin.SecureJoin(a.image, base)
	if err != nil {
		return nil, fmt.Errorf("resolving %s in the image: %w", base, err)
	}
	imageContent, err := readRegular(p, userDBMax)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s of the image: %w; --no-mount %s leaves it as it is", base, err, gen)
	}
	if gen == mountplan.GenGroup {
		return groupFile(imageContent, a.cfg.User), nil
	}
	return passwdFile(imageContent, a.cfg.User), nil
}

// ensure returns the staging-side path of dest inside the new root, making
// the mount point (a directory, or an empty file when dir is false) when the
// image lacks it. dest is resolved inside the new root: a symlink in the
// image can never lead outside it.
func (a *assembler) ensure(dest string, dir bool) (string, error) {
	if !filepath.IsAbs(dest) {
		return "", fmt.Errorf("mount destination %s is not an absolute path", dest)
	}
	p, err := securejoin.SecureJoin(a.root, dest)
	if err != nil {
		return "", fmt.Errorf("resolving %s in the container: %w", dest, err)
	}
	if p == a.root && path.Clean(dest) != "/" {
		// A symbolic link in the image (/tmp -> /) would put a host
		// directory in place of the whole container.
		return "", fmt.Errorf("cannot mount on %s: the image makes it a symbolic link to the container's root", dest)
	}
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() != dir {
			what := map[bool]string{true: "a directory", false: "a file"}
			return "", fmt.Errorf("cannot mount %s on %s: the image has %s there", what[dir], dest, what[fi.IsDir()])
		}
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("checking mount point %s: %w", dest, err)
	}
	anc := filepath.Dir(p)
	for anc != a.root && !exists(anc) {
		anc = filepath.Dir(anc)
	}
	switch a.originOf(anc) {
	case neverCreate:
		return "", fmt.Errorf("cannot create mount point %s: %s comes from the host", dest, a.inside(anc))
	case fromLayers:
		return "", fmt.Errorf("cannot create mount point %s in the overlay layers", dest)
	case fromSandbox:
		if unix.Access(anc, unix.W_OK) != nil {
			if err := a.underlay(anc, a.index, nil); err != nil {
				return "", err
			}
		}
	case fromImage:
		if err := a.underlay(anc, a.index, nil); err != nil {
			return "", err
		}
	}
	mkdir := p
	if !dir {
		mkdir = filepath.Dir(p)
	}
	if err := os.MkdirAll(mkdir, 0o755); err != nil {
		return "", fmt.Errorf("creating mount point %s: %w", dest, err)
	}
	if !dir {
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return "", fmt.Errorf("creating mount point %s: %w", dest, err)
		}
		unix.Close(fd)
	}
	return p, nil
}
