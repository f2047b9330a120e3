package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/imagetrust"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/rootplan"
	"github.com/launch-hpc/launch/internal/warmroot"
)

// builtRoot is the assembled root, for the steps after it: where it is on
// the staging side, and the device of the image's FUSE mount (imageDev,
// when fromFUSE), whose files the payload's start reads ahead.
type builtRoot struct {
	path     string
	imageDev uint64
	fromFUSE bool
	// hostDeps are the host files the container was made from
	// (warmroot_linux.go).
	hostDeps []warmroot.Dep
}

// assembleRoot opens what the container needs from the host
// (newAssembler) and builds its root (build). It returns what it started
// also when it fails: the caller owns that from then on.
func assembleRoot(cfg *Config, d deps) (builtRoot, started, error) {
	a, err := newAssembler(cfg, d)
	if err == nil {
		err = a.build()
	}
	if err != nil {
		return builtRoot{}, a.res, err
	}
	dev, ok := a.imageDevice()
	return builtRoot{path: a.root, imageDev: dev, fromFUSE: ok, hostDeps: a.hostDeps}, a.res, nil
}

// newAssembler opens everything the container needs from the host while
// the host's view is still intact. For a SquashFS image it first starts the
// FUSE server on a detached mount: the server's start-up (exec, its shared
// libraries, the image's superblock) then runs on another CPU while the
// stage opens the host paths and prepares the staging area, until build
// first reads the image.
func newAssembler(cfg *Config, d deps) (*assembler, error) {
	a := &assembler{cfg: cfg, deps: d, srcs: map[int]*os.File{}, isDir: map[int]bool{}}
	flag := os.O_RDONLY
	if cfg.Image.Format == image.FormatDir {
		flag = unix.O_PATH | unix.O_DIRECTORY
	}
	f, err := os.OpenFile(cfg.Image.Path, flag, 0)
	if err != nil {
		return a, fmt.Errorf("opening image %s: %w", cfg.Image.Path, err)
	}
	a.imgF = f
	a.res.held = append(a.res.held, f)
	if cfg.ImageID != "" {
		// The file mounted is the one whose signatures were checked.
		if err := imagetrust.SameFile(int(f.Fd()), cfg.ImageID); err != nil {
			return a, fmt.Errorf("image %s: %w", cfg.Image.Path, err)
		}
	}
	if cfg.Image.Format != image.FormatDir && !a.claimShare(a.holdOK) {
		if err := a.startImage(""); err != nil {
			return a, err
		}
	}
	a.depend(cfg.Image.Path, f, false) // once claimShare has said whether it shares
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return a, fmt.Errorf("making mounts private: %w", err)
	}
	if err := a.openLayers(); err != nil {
		return a, err
	}
	for i, op := range cfg.Plan.Ops {
		if op.Kind != mountplan.Bind {
			continue
		}
		fd, err := a.openSource(op)
		if err != nil {
			if op.Optional && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES)) {
				a.dependAbsent(op.Source)
				continue
			}
			return a, fmt.Errorf("bind source %s: %w", op.Source, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return a, fmt.Errorf("bind source %s: %w", op.Source, err)
		}
		a.srcs[i] = os.NewFile(uintptr(fd), op.Source)
		a.isDir[i] = st.Mode&unix.S_IFMT == unix.S_IFDIR
		a.dependStat(op.Source, &st, true)
	}
	a.dependInputs()
	a.tl.Mark("sources-opened")
	return a, nil
}

// openSource opens (O_PATH) the host source of the bind op. One below a
// --workdir is opened from the workdir's descriptor, following no link.
func (a *assembler) openSource(op mountplan.Op) (int, error) {
	if op.Beneath == "" {
		return unix.Open(op.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	}
	rel, err := filepath.Rel(op.Beneath, op.Source)
	if err != nil {
		return -1, err
	}
	return openWorkdirDir(op.Beneath, rel, a.cfg.User.UID)
}

// build mounts the staging tmpfs, the image and every op of the plan.
func (a *assembler) build() error {
	if err := unix.Mount("launch", stagingDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, stagingOpts); err != nil {
		return fmt.Errorf("mounting staging tmpfs on %s: %w", stagingDir, err)
	}
	// Unbindable: a recursive bind of a host directory holding stagingDir
	// (/tmp, /) leaves the staging tmpfs, and all that is mounted in it by
	// then, out of its copy, so the container sees the host's directory
	// there, not the staging area.
	if err := unix.Mount("", stagingDir, "", unix.MS_UNBINDABLE, ""); err != nil {
		return fmt.Errorf("making the staging tmpfs on %s unbindable: %w", stagingDir, err)
	}
	a.image = filepath.Join(stagingDir, "image")
	a.root = filepath.Join(stagingDir, "root")
	a.files = filepath.Join(stagingDir, "files")
	for _, d := range []string{a.image, a.root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := a.mountImage(); err != nil {
		return err
	}
	a.index = rootplan.NewIndex(os.DirFS(a.image))
	root := rootplan.ImageRoot
	switch {
	case a.cfg.Layers != nil:
		root = rootplan.LayersRoot
		if err := a.mountLayers(); err != nil {
			return err
		}
		if err := a.checkRoot(func() error { _, err := os.ReadDir(a.root); return err }); err != nil {
			return err
		}
		a.tl.Mark("image-readable")
	default:
		if a.cfg.Writable {
			root = rootplan.SandboxRoot
		}
		// The first read of the image waits for the FUSE server.
		if err := a.checkRoot(func() error { _, err := a.index.List("/"); return err }); err != nil {
			return err
		}
		a.tl.Mark("image-readable")
		a.sharePrepare(a.image)
	}
	a.dropPresent()
	plan := rootplan.Make(a.cfg.Plan.Ops, a.targets(), root, a.index)
	for _, st := range plan.Steps {
		if err := a.step(st, &plan); err != nil {
			return err
		}
	}
	return nil
}

// step applies one step of the root's plan (rootplan) to the root at
// a.root.
func (a *assembler) step(st rootplan.Step, plan *rootplan.Plan) error {
	switch st.Kind {
	case rootplan.BindImage, rootplan.UnderlayRoot:
		origin := fromImage
		if a.cfg.Writable {
			origin = fromSandbox
		}
		a.record(mountRec{path: a.root, origin: origin})
		if st.Kind == rootplan.UnderlayRoot {
			// That tmpfs is the new root: nothing is bound below it.
			return a.underlay(a.root, a.index, plan)
		}
		if err := bind(a.image, a.root, false); err != nil {
			return fmt.Errorf("mounting image root: %w", err)
		}
	case rootplan.Underlay:
		return a.underlay(filepath.Join(a.root, st.Dir), a.index, plan)
	case rootplan.Mount:
		if st.ResolveAtApply {
			a.log.Debugf("mount point of %s resolved as it is applied", a.cfg.Plan.Ops[st.Op])
		}
		return a.apply(st.Op, a.cfg.Plan.Ops[st.Op])
	case rootplan.Seal:
		// The underlays still in sight become read-only; one that a later
		// mount covers is out of reach, and its path now names that mount
		// (a writable bind over /etc must stay writable).
		for _, m := range a.mounts {
			if !m.underlay {
				continue
			}
			if err := setAttr(m.path, unix.MOUNT_ATTR_RDONLY, false); err != nil {
				return fmt.Errorf("making %s read-only: %w", a.inside(m.path), err)
			}
		}
	default:
		return fmt.Errorf("unknown root step %d", st.Kind)
	}
	return nil
}
