package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/rootplan"
	"github.com/launch-hpc/launch/internal/share"
	"github.com/launch-hpc/launch/internal/timeline"
)

// stageDir is the host directory the stage covers with its private staging
// tmpfs inside its own mount namespace (never visible outside it). Every host
// path the container needs is opened before the staging tmpfs hides it.
const stageDir = "/tmp"

// stagingOpts are the options of the staging tmpfs and of the tmpfs holding
// generated files.
const stagingOpts = "mode=0755,size=16m"

// origin says where the content at a path of the new root comes from, which
// decides how a missing mount point below it can be made.
type origin int

const (
	fromImage   origin = iota // read-only image: underlay to add entries
	fromTmpfs                 // our own tmpfs: create entries directly
	fromHost                  // a host bind: never create anything there
	fromLayers                // overlay layers that must not get mount points
	fromSandbox               // a --writable sandbox: mount points made in it where it can
)

// mountRec remembers one mount made in the new root, while nothing
// covers it (see record).
type mountRec struct {
	path     string // absolute path on the staging side
	origin   origin
	underlay bool   // an underlay tmpfs (made read-only at the end)
	dev      uint64 // an underlay's device: writes into it must reach it
}

// deps are what the assembler is given: where it logs, the timeline it
// marks, how it forks a FUSE server (the stage's reaper, on its locked
// thread), and whether it may serve its image mount to other launches (a
// stage that reports its status before it cleans up: see stage).
type deps struct {
	log    *msg.Logger
	tl     *timeline.T // nil unless LAUNCH_TIMELINE is set
	fork   fuse.Forker
	holdOK bool
}

// started is what assembling the root started or holds and the stage must
// stop or keep: the assembler hands it to the supervisor, which owns it
// from then on (also when the assembly failed half-way).
type started struct {
	server *fuse.Server  // the image's FUSE server; nil when none
	holder *share.Holder // serving the image mount to other launches
	client *share.Client // using another launch's image mount
	// overlay serves a fuse-overlayfs root; it is killed with the
	// payload's leftovers (a descendant like them), after server.
	overlay *fuse.Server
	// held are descriptors kept open while the root is assembled: the
	// image file, the --overlay directories.
	held []*os.File
	// locks are the --overlay directories' locks: plain descriptors (no
	// finalizer may close one), never closed, released when the stage
	// exits, after every process that could write to a layer is gone.
	locks []int
}

// assembler builds the container's root in the staging tmpfs.
type assembler struct {
	cfg *Config
	deps
	res    started
	image  string // the pristine image view
	root   string // the new root being assembled
	files  string // generated files (a tmpfs of their own: mountFiles)
	mounts []mountRec
	index  *rootplan.Index  // what the pristine image view holds
	srcs   map[int]*os.File // host sources of bind ops, by op index
	imgF   *os.File         // the image file (SIF/squashfs) or dir
	isDir  map[int]bool     // whether each bind source is a directory

	filesDir *os.File // the tmpfs at files, once mounted (O_PATH)
	bin      string   // the squashfuse program, once found

	layerFDs    []*os.File // the --overlay directories, in order
	layerEngine string     // what serves the overlay root, for -v
}

// builtRoot is the assembled root, for the steps after it: where it is on
// the staging side, and the device of the image's FUSE mount (imageDev,
// when fromFUSE), whose files the payload's start reads ahead.
type builtRoot struct {
	path     string
	imageDev uint64
	fromFUSE bool
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
	return builtRoot{path: a.root, imageDev: dev, fromFUSE: ok}, a.res, nil
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
	if cfg.Image.Format != image.FormatDir && !a.claimShare(a.holdOK) {
		if err := a.startImage(""); err != nil {
			return a, err
		}
	}
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
	}
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
	if err := unix.Mount("launch", stageDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, stagingOpts); err != nil {
		return fmt.Errorf("mounting staging tmpfs on %s: %w", stageDir, err)
	}
	// Unbindable: a recursive bind of a host directory holding stageDir
	// (/tmp, /) leaves the staging tmpfs, and all that is mounted in it by
	// then, out of its copy, so the container sees the host's directory
	// there, not the staging area.
	if err := unix.Mount("", stageDir, "", unix.MS_UNBINDABLE, ""); err != nil {
		return fmt.Errorf("making the staging tmpfs on %s unbindable: %w", stageDir, err)
	}
	a.image = filepath.Join(stageDir, "image")
	a.root = filepath.Join(stageDir, "root")
	a.files = filepath.Join(stageDir, "files")
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
		UID: a.cfg.User.UID, GID: a.cfg.User.GID, Binary: bin,
		Fork: a.fork,
	})
	if target == "" && errors.Is(err, fuse.ErrNoDetached) {
		a.log.Debugf("%v; mounting the image on %s instead", err, stageDir)
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
	a.log.Debugf("mounted %s (offset %d) on %s with %s, pid %d", img.Path, img.Offset, where, bin, srv.Pid)
	return nil
}

// squashfuse finds the squashfuse program (once).
func (a *assembler) squashfuse() (string, error) {
	if a.bin == "" {
		bin, err := fuse.FindSquashfuse(a.cfg.Squashfuse)
		if err != nil {
			return "", err
		}
		a.bin = bin
	}
	return a.bin, nil
}

// checkRoot reads the root directory once (read): this waits for the FUSE
// server and turns a server that failed (bad image, bad offset) into a
// clear error.
func (a *assembler) checkRoot(read func() error) error {
	if err := read(); err != nil {
		detail := ""
		if a.res.server != nil {
			detail = strings.Join(strings.Fields(a.res.server.Stderr()), " ")
		}
		if detail != "" {
			return fmt.Errorf("reading the root filesystem of %s: %s", a.cfg.Image.Path, detail)
		}
		return fmt.Errorf("reading the root filesystem of %s: %w", a.cfg.Image.Path, err)
	}
	return nil
}

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
		a.record(mountRec{path: dst, origin: fromHost})
	case mountplan.Proc:
		dst, err := a.ensure(op.Dest, true)
		if err != nil {
			return err
		}
		if err := unix.Mount("proc", dst, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting proc on %s: %w", op.Dest, err)
		}
		a.record(mountRec{path: dst, origin: fromHost})
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
		a.record(mountRec{path: dst, origin: fromHost})
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
		a.record(mountRec{path: dst, origin: fromHost})
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

// readFile reads the file at p like os.ReadFile, but without registering
// the descriptor with Go's poller: for a file of the image that would cost
// a POLL request to the FUSE server, which serves one request at a time.
func readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return readFD(fd, p)
}

// readFD reads the open file fd (named p in errors) from its start to its
// end.
func readFD(fd int, p string) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
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
	case fromHost:
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

// record notes a mount made on m.path. It lies on top of every mount
// made before on that path or below it, which can no longer be reached by
// path: their records go, so that originOf and inUnderlay never answer for
// a mount that is covered (an image's /tmp -> / once had the host's /tmp
// bound over the root, and the stale record of the /etc underlay below it
// sent the generated /etc/passwd into a host file).
func (a *assembler) record(m mountRec) {
	kept := a.mounts[:0]
	for _, o := range a.mounts {
		if o.path != m.path && !strings.HasPrefix(o.path, m.path+"/") {
			kept = append(kept, o)
		}
	}
	a.mounts = append(kept, m)
}

// deepest returns the record of the deepest mount holding p (of two on
// the same path, which record never leaves, the later).
func (a *assembler) deepest(p string) (mountRec, bool) {
	best, found := mountRec{}, false
	for _, m := range a.mounts {
		if (p == m.path || strings.HasPrefix(p, m.path+"/")) && (!found || len(m.path) >= len(best.path)) {
			best, found = m, true
		}
	}
	return best, found
}

// inUnderlay reports whether p, a mount point ensure returned for a file,
// is a file of an underlay tmpfs (not itself a mount), and returns that
// underlay and p's path below it. The file is only written through
// writeInTmpfs, which checks all of that again on descriptors.
func (a *assembler) inUnderlay(p string) (mountRec, string, bool) {
	m, ok := a.deepest(p)
	if !ok || !m.underlay || p == m.path {
		return mountRec{}, "", false
	}
	return m, strings.TrimPrefix(p, m.path+"/"), true
}

// originOf returns the origin of the deepest mount holding path.
func (a *assembler) originOf(path string) origin {
	if m, ok := a.deepest(path); ok {
		return m.origin
	}
	return fromImage
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

// inside turns a staging-side path into the path the container will see.
func (a *assembler) inside(p string) string {
	rel := strings.TrimPrefix(p, a.root)
	if rel == "" {
		return "/"
	}
	return rel
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// fdPath names an open file by its /proc/self/fd link, which mount(2)
// follows to the very object that was opened.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// bind bind-mounts src on dst (recursively when rec).
func bind(src, dst string, rec bool) error {
	flags := uintptr(unix.MS_BIND)
	if rec {
		flags |= unix.MS_REC
	}
	return unix.Mount(src, dst, "", flags, "")
}

// setAttr sets mount attributes on the mount at path (and below when rec).
func setAttr(path string, attr uint64, rec bool) error {
	flags := 0
	if rec {
		flags = unix.AT_RECURSIVE
	}
	return unix.MountSetattr(unix.AT_FDCWD, path, uint(flags), &unix.MountAttr{Attr_set: attr})
}
