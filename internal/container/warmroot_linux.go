package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/environ"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/share"
	"github.com/launch-hpc/launch/internal/warmroot"
)

// A warm container: the holder of a shared image mount (share_linux.go,
// warm_linux.go) also serves its whole container (its user and mount
// namespaces) to later launches of the very same request, which join it
// from the constructor without starting Go (internal/warmroot,
// internal/preinit's warm_linux.c). Only a container that any launch of the
// same request would get again is served: nothing in it may be a launch's
// own (a tmpfs, /proc, devpts, a namespace, a writable layer), nor depend
// on more than the request and the host files recorded here.

// inputsOf records the host files besides the image and the bind sources
// that prepare reads for s, as they are now (Config.Inputs). launch.conf
// was read a few milliseconds earlier, by the command line.
func inputsOf(s *runspec.Spec) []warmroot.Dep {
	site, _ := config.SitePath()
	paths := append([]string{site, hostPasswd, hostGroup}, s.Env.Files...)
	in := make([]warmroot.Dep, len(paths))
	for i, p := range paths {
		in[i] = warmroot.Stat(absPath(p))
	}
	return in
}

// depend records that the container is made from the host file f at path
// (content: its size and times count too), when this launch shares its
// image mount and so may keep its container (recording).
func (a *assembler) depend(path string, f *os.File, object bool) {
	if !a.recording() {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil {
		a.dependStat(path, &st, object)
	}
}

// dependStat records path as it was when opened (st); object: only which
// file it is counts (a bind source, seen live).
func (a *assembler) dependStat(path string, st *unix.Stat_t, object bool) {
	if !a.recording() {
		return
	}
	path = absPath(path)
	if object {
		a.hostDeps = append(a.hostDeps, warmroot.Object(path, st))
	} else {
		a.hostDeps = append(a.hostDeps, warmroot.File(path, st))
	}
}

// dependAbsent records that path did not exist (an optional bind source).
func (a *assembler) dependAbsent(path string) {
	if a.recording() {
		a.hostDeps = append(a.hostDeps, warmroot.Absent(absPath(path)))
	}
}

// dependInputs records the Config's other inputs, as prepare found them.
func (a *assembler) dependInputs() {
	if !a.recording() {
		return
	}
	a.hostDeps = append(a.hostDeps, a.cfg.Inputs...)
}

// programRefusal says why the payload's start cannot be given to later
// launches as it is: its program (argv0, as found on the container's PATH)
// must lie on the image, whose identity is recorded, and so must every
// directory of PATH searched before it (a program added to a bound
// directory, ~/bin or the working directory, would be found first by a
// launch that searched again).
func programRefusal(cfg *Config, root builtRoot, argv0 string, env []string) string {
	if !root.fromFUSE {
		return "it is not on a FUSE image"
	}
	if !onImage(argv0, root.imageDev) {
		return fmt.Sprintf("its program %s is not on the image", argv0)
	}
	if len(cfg.Args) == 0 || strings.Contains(cfg.Args[0], "/") {
		return ""
	}
	dir := filepath.Dir(argv0)
	for _, d := range filepath.SplitList(environ.Get(env, "PATH")) {
		if d == dir {
			break
		}
		if d == "" || !filepath.IsAbs(d) || !fixed(d, root.imageDev) {
			return fmt.Sprintf("PATH has %q, not on the image, before %s", d, dir)
		}
	}
	return ""
}

// onImage reports whether path (in the container) lies on the device dev.
func onImage(path string, dev uint64) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Dev == dev
}

// fixed reports whether no program can appear in the directory path (in
// the container) while the container is kept: it, or its nearest existing
// ancestor, lies on the image (device dev) or on a read-only tmpfs (an
// underlay of launch's). A host bind, writable or not, can change.
func fixed(path string, dev uint64) bool {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil {
			if st.Dev == dev {
				return true
			}
			var fs unix.Statfs_t
			return unix.Statfs(p, &fs) == nil && fs.Type == unix.TMPFS_MAGIC && fs.Flags&unix.ST_RDONLY != 0
		}
		if p == "/" {
			return false
		}
	}
}

// dependsOn reports whether deps record the file at path.
func dependsOn(deps []warmroot.Dep, path string) bool {
	path = absPath(path)
	for _, d := range deps {
		if d.Path == path && d.Line != "A" {
			return true
		}
	}
	return false
}

// recording reports whether this launch records the host files: only one
// that shares its image mount can keep its container.
func (a *assembler) recording() bool { return a.res.holder != nil || a.res.client != nil }

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// containerRefusal says why cfg's container may not be served to later
// launches ("" when it may).
func containerRefusal(cfg *Config, role payloadRole) string {
	switch {
	case !cfg.KeepContainer:
		return "images.keep_containers is off"
	case cfg.User.UID == 0:
		return "root's payload could change its mounts"
	case cfg.Fakeroot != nil, cfg.Layers != nil, cfg.Writable:
		return "it has a writable layer or --fakeroot"
	case cfg.Namespaces.Extra():
		return "it has namespaces of its own"
	case cfg.Instance != nil, cfg.ShareNS != nil, role != nil:
		return "it is an instance's or a --sharens launch's"
	case len(cfg.LibPath) > 0, cfg.Devices:
		return "it has GPUs or devices (their files are not recorded)"
	case cfg.ImageID != "":
		return "its image's signatures were checked (images.verify)"
	}
	for _, op := range cfg.Plan.Ops {
		switch op.Kind {
		case mountplan.Bind, mountplan.File, mountplan.Symlink:
		default:
			return fmt.Sprintf("it has a %s of its own on %s", op.Kind, op.Dest)
		}
	}
	return ""
}

// maxOffers bounds how many containers a holder keeps.
const maxOffers = 16

// offerContainer, once the payload has started, keeps this stage's
// container for later launches of the same request (sv.warm): a holder of
// the image mount serves it itself, for as long as it holds the mount; a
// launch using another's mount hands it to that holder, which outlives
// it. Either way the holder counts the launches that join as clients, and
// stops serving when it stops. A holder also takes such offers.
func (sv *supervisor) offerContainer(cfg *Config, root builtRoot, argv0 string, argv, env []string, wd string) {
	h, c := sv.res.holder, sv.res.client
	if h != nil {
		sv.takeOffers(h, cfg.User.UID)
	}
	if sv.warm == nil || (h == nil && c == nil) {
		return
	}
	if why := containerRefusal(cfg, sv.role); why != "" {
		sv.log.Debugf("not keeping this container for later launches: %s", why)
		return
	}
	if sv.warm.Name != warmroot.Name(cfg.User.UID, sv.warm.Request) {
		sv.log.Debugf("not keeping this container for later launches: the constructor named it %s, not %s", sv.warm.Name, warmroot.Name(cfg.User.UID, sv.warm.Request))
		return
	}
	if why := programRefusal(cfg, root, argv0, env); why != "" {
		sv.log.Debugf("not keeping this container for later launches: %s", why)
		return
	}
	if !dependsOn(root.hostDeps, cfg.Image.Path) {
		sv.log.Debugf("not keeping this container for later launches: its image file was not recorded")
		return
	}
	pid := os.Getpid()
	if h == nil {
		pid = c.HolderPid // who will serve it
	}
	body, err := sv.answer(cfg, pid, root, argv0, argv, env, wd).Encode()
	if err != nil {
		sv.log.Debugf("not keeping this container for later launches: %v", err)
		return
	}
	userNS, err1 := openAt(sv.proc, "self/ns/user")
	mntNS, err2 := openAt(sv.proc, "self/ns/mnt")
	if err1 != nil || err2 != nil {
		userNS.Close()
		mntNS.Close()
		sv.log.Debugf("not keeping this container for later launches: its namespaces: %v %v", err1, err2)
		return
	}
	if h == nil {
		o := &warmroot.Offer{Name: sv.warm.Name, Request: sv.warm.Request, Body: body}
		err := c.Offer(o.Encode(), []int{int(userNS.Fd()), int(mntNS.Fd())})
		userNS.Close()
		mntNS.Close()
		if err != nil {
			sv.log.Debugf("not keeping this container for later launches: %v", err)
			return
		}
		sv.log.Debugf("handed this container to pid %d for later launches of the same command line (@%s)", pid, sv.warm.Name)
		return
	}
	if err := sv.kept.serve(h, cfg.User.UID, sv.warm.Name, sv.warm.Request, body, userNS, mntNS); err != nil {
		sv.log.Debugf("not keeping this container for later launches: %v", err)
		return
	}
	sv.log.Debugf("keeping this container for later launches of the same command line (@%s)", sv.warm.Name)
}

// answer is what a launch that joins this container is told: the
// payload's start, the host files, and the lines it prints, in this
// launch's words (cfg.LogLevel: the same command line, the same level);
// pid serves it.
func (sv *supervisor) answer(cfg *Config, pid int, root builtRoot, argv0 string, argv, env []string, wd string) *warmroot.Reply {
	level := msg.Level(cfg.LogLevel)
	line := func(f func(l *msg.Logger)) string {
		var b bytes.Buffer
		f(msg.New(&b, level))
		return b.String()
	}
	return &warmroot.Reply{
		Pid: pid, Cwd: wd, Exec: argv0, Argv: argv, Env: env, Deps: root.hostDeps,
		Joined: line(func(l *msg.Logger) {
			l.Verbosef("joining the container kept by launch pid %d for later launches of this same command line (--linger)", pid)
		}),
		Stale: strings.TrimSuffix(line(func(l *msg.Logger) {
			l.Debugf("not joining the container kept by launch pid %d: a file it was made from changed: ", pid)
		}), "\n"),
		Lost: line(func(l *msg.Logger) {
			l.Warnf("launch pid %d, which shared its container with this one, was killed or lost its squashfuse server; the image is no longer readable", pid)
		}),
	}
}

// kept are the containers a holder serves, by name: its own and those its
// clients handed it.
type kept struct {
	mu     sync.Mutex
	byName map[string]*warmroot.Server
}

// serve has the holder h serve a container under name (its namespaces
// userNS and mntNS, which it owns from now on). A container already served
// under that name is replaced: it is stale (a launch of the same request
// found that a file it was made from changed, and made this one). At most
// maxOffers are kept.
func (k *kept) serve(h *share.Holder, uid int, name string, request, body []byte, userNS, mntNS *os.File) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for n, srv := range k.byName {
		if srv.Closed() {
			delete(k.byName, n)
		}
	}
	old, replacing := k.byName[name]
	if !replacing && len(k.byName) >= maxOffers {
		userNS.Close()
		mntNS.Close()
		return fmt.Errorf("%d containers kept already", len(k.byName))
	}
	if replacing {
		old.Close()
	}
	l, err := warmroot.Listen(name)
	if err != nil { // another launch of this request has it
		delete(k.byName, name)
		userNS.Close()
		mntNS.Close()
		return err
	}
	if k.byName == nil {
		k.byName = map[string]*warmroot.Server{}
	}
	srv := warmroot.Serve(l, uid, request, body, userNS, mntNS, h)
	k.byName[name] = srv
	h.AddCloser(srv)
	return nil
}

// takeOffers has the holder h serve the containers its clients hand it
// (Client.Offer).
func (sv *supervisor) takeOffers(h *share.Holder, uid int) {
	h.TakeOffers(func(b []byte, fds []int) {
		files := make([]*os.File, len(fds))
		for i, fd := range fds {
			unix.CloseOnExec(fd)
			files[i] = os.NewFile(uintptr(fd), "offered namespace")
		}
		o, err := warmroot.DecodeOffer(b)
		if err == nil && o.Name != warmroot.Name(uid, o.Request) {
			err = errors.New("offered under another name than its request's")
		}
		if err != nil || len(files) != 2 {
			for _, f := range files {
				f.Close()
			}
			return
		}
		_ = sv.kept.serve(h, uid, o.Name, o.Request, o.Body, files[0], files[1])
	})
}

// openAt opens name below dir (the host's /proc).
func openAt(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /proc/%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/proc/"+name), nil
}
