package container

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
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

// inputsOf lists the host files besides the image and the bind sources that
// prepare reads for s (Config.Inputs).
func inputsOf(s *runspec.Spec) []string {
	site, _ := config.SitePath()
	in := []string{site, hostPasswd, hostGroup}
	in = append(in, s.Env.Files...)
	for i, p := range in {
		if a, err := filepath.Abs(p); err == nil {
			in[i] = a
		}
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

// dependInputs records the Config's other inputs as they are now.
func (a *assembler) dependInputs() {
	if !a.recording() {
		return
	}
	for _, p := range a.cfg.Inputs {
		a.hostDeps = append(a.hostDeps, warmroot.Stat(p))
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
	case len(cfg.LibPath) > 0:
		return "it has GPU libraries bound"
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
