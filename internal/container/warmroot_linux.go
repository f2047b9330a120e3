package container

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/runspec"
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
// (content: its size and times count too), when this launch holds the
// image mount and so may serve its container.
func (a *assembler) depend(path string, f *os.File, object bool) {
	if a.res.holder == nil {
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
	if a.res.holder == nil {
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
	if a.res.holder != nil {
		a.hostDeps = append(a.hostDeps, warmroot.Absent(absPath(path)))
	}
}

// dependInputs records the Config's other inputs as they are now.
func (a *assembler) dependInputs() {
	if a.res.holder == nil {
		return
	}
	for _, p := range a.cfg.Inputs {
		a.hostDeps = append(a.hostDeps, warmroot.Stat(p))
	}
}

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

// offerContainer serves this stage's container, once its payload has
// started, to later launches of the same request (sv.warm), for as long as
// it holds the image mount: the holder counts them as clients, and stops
// the server when it stops.
func (sv *supervisor) offerContainer(cfg *Config, root builtRoot, argv0 string, argv, env []string, wd string) {
	h := sv.res.holder
	if sv.warm == nil || h == nil {
		return
	}
	if why := containerRefusal(cfg, sv.role); why != "" {
		sv.log.Debugf("not keeping this container for later launches: %s", why)
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
	pid := os.Getpid()
	level := msg.Level(cfg.LogLevel)
	line := func(f func(l *msg.Logger)) string {
		var b bytes.Buffer
		f(msg.New(&b, level))
		return b.String()
	}
	rep := &warmroot.Reply{
		Pid: pid, Cwd: wd, Exec: argv0, Argv: argv, Env: env, Deps: root.hostDeps,
		Joined: line(func(l *msg.Logger) {
			l.Verbosef("joining the container of launch pid %d, kept for later launches of this same command line (--linger)", pid)
		}),
		Stale: line(func(l *msg.Logger) {
			l.Debugf("not joining the container of launch pid %d: a file it was made from changed: ", pid)
		}),
		Lost: line(func(l *msg.Logger) {
			l.Warnf("launch pid %d, which shared its container with this one, was killed or lost its squashfuse server; the image is no longer readable", pid)
		}),
	}
	rep.Stale = trimNewline(rep.Stale)
	l, err := warmroot.Listen(sv.warm.Name)
	if err != nil {
		// Another launch of this request holds it.
		userNS.Close()
		mntNS.Close()
		sv.log.Debugf("not keeping this container for later launches: %v", err)
		return
	}
	srv, err := warmroot.Serve(l, cfg.User.UID, sv.warm.Request, rep, userNS, mntNS, h)
	if err != nil {
		sv.log.Debugf("not keeping this container for later launches: %v", err)
		return
	}
	h.AddCloser(srv)
	sv.log.Debugf("keeping this container for later launches of the same command line (@%s)", sv.warm.Name)
}

// openAt opens name below dir (the host's /proc).
func openAt(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /proc/%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/proc/"+name), nil
}

func trimNewline(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}
