package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/reap"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/timeline"
)

// Run checks spec (runspec.Spec.Validate), then runs the container for it and returns
// the exit status the launcher should exit with: the payload's own, or
// 128+N when it died of signal N. An error means the container could not be
// started at all.
//
// It first prepares the container's Config (prepare: everything about the
// run that needs the host, checked before any container exists). When pre
// says this process is already in its own user and mount namespaces and
// the spec asks for no other namespace, the container is built right here
// (runHere). Otherwise a stage is re-executed in new namespaces (new user
// and mount namespaces, unless pre made them already, plus those asked
// for); this process forwards signals to it and waits.
func Run(spec *runspec.Spec, pre preinit.Result) (int, error) {
	if err := spec.Validate(); err != nil {
		return 0, err
	}
	if name, ok := strings.CutPrefix(spec.Image, InstanceScheme); ok {
		return joinInstance(spec, name, pre) // join_linux.go
	}
	cfg, err := prepare(spec)
	if err != nil {
		return 0, err
	}
	if pre.Done {
		timeline.FromEnv("stage").Mark("resolved")
	}
	if pre.Done && cfg.Fakeroot != nil {
		// internal/preinit leaves --fakeroot command lines alone; this one
		// reached it some other way.
		return 0, errors.New("--fakeroot: this launch already runs in a user namespace of its own (" +
			"give --fakeroot on the command line, or set LAUNCH_PREINIT=0)")
	}
	if spec.ShareNS {
		return runShared(spec, cfg, pre) // sharens_linux.go
	}
	if pre.Done && !cfg.Namespaces.Extra() {
		return runHere(cfg, pre)
	}
	return runStage(cfg, pre)
}

// runStage re-executes launch as the container stage and waits for it.
func runStage(cfg *Config, pre preinit.Result) (int, error) {
	tl := timeline.FromEnv("launcher")
	files := []uintptr{0, 1, 2, 0}
	var passed []int                   // descriptors of this process's that only the stage keeps
	if in := cfg.Instance; in != nil { // its handshake goes on to the stage
		files = append(files, uintptr(in.ReadyFD))
		passed = append(passed, in.ReadyFD)
		c, i := *cfg, *in
		i.ReadyFD = len(files) - 1
		c.Instance = &i
		cfg = &c
	}
	if sn := cfg.ShareNS; sn != nil { // its listening socket too
		files = append(files, uintptr(sn.ListenFD))
		passed = append(passed, sn.ListenFD)
		c, n := *cfg, *sn
		n.ListenFD = len(files) - 1
		c.ShareNS = &n
		cfg = &c
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return 0, fmt.Errorf("encoding container config: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating stage pipe: %w", err)
	}
	defer pw.Close()

	sigs := make(chan os.Signal, 16)
	notify(sigs, keepIgnored())
	defer signal.Stop(sigs)

	// syscall.ForkExec, not os.StartProcess: the os package probes pidfd
	// support once per process by cloning a throwaway child, which costs a
	// process creation on every launch.
	tl.Mark("clone")
	files[stagePipeFD] = pr.Fd()
	pid, err := syscall.ForkExec("/proc/self/exe", []string{os.Args[0], ReexecArg}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   stageSysProcAttr(cfg, pre.Done),
	})
	pr.Close()
	for _, fd := range passed {
		_ = syscall.Close(fd) // the stage's alone now
	}
	if err != nil {
		return 0, explainStartError(err)
	}
	tl.Mark("stage-cloned")
	if f := cfg.Fakeroot; f != nil && f.helpers() {
		if err := f.writeMaps(pid); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_, _ = reapStage(pid)
			return 0, err
		}
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := pw.Write(append(hdr[:], data...)); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_, _ = reapStage(pid)
		return 0, fmt.Errorf("sending config to container stage: %w", err)
	}

	// The stage stays a zombie until reap: signals forwarded before that
	// can never reach a recycled pid.
	exited := make(chan struct{})
	go func() {
		waitExited(pid)
		close(exited)
	}()
	// A waiting parent (internal/preinit) that dies takes us along: leaving
	// closes the stage's pipe, and the stage takes the container down.
	parentGone := make(chan struct{})
	if pre.Parent != nil {
		go watchLauncher(pre.Parent, parentGone)
	}
	jobGone := watchJob(cfg) // nil unless an instance inside a batch job (instance_linux.go)
	for {
		select {
		case <-jobGone:
			jobGone = nil
			_ = syscall.Kill(pid, syscall.SIGKILL) // its PID namespace's init: all of it ends
		case <-parentGone:
			return reap.Signalled(syscall.SIGKILL), nil
		case s := <-sigs:
			if fromTerminal(s) {
				continue // the terminal already sent it to the whole process group
			}
			_ = syscall.Kill(pid, s.(syscall.Signal))
		case <-exited:
			ws, err := reapStage(pid)
			tl.Mark("stage-reaped")
			if err != nil {
				return 0, fmt.Errorf("waiting for the container stage: %w", err)
			}
			return reap.Status(ws), nil
		}
	}
}

// waitExited returns once pid has exited, leaving it unreaped.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// reapStage collects pid's exit status.
func reapStage(pid int) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}

// stageSysProcAttr says how to clone the stage: which namespaces, and the
// identity uid/gid map (the user keeps their own ids inside). inUserNS: this
// process is already in its own user namespace (internal/preinit), so the
// stage gets no new one, and no maps.
func stageSysProcAttr(cfg *Config, inUserNS bool) *syscall.SysProcAttr {
	flags := uintptr(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS)
	if inUserNS {
		flags = syscall.CLONE_NEWNS
	}
	ns := cfg.Namespaces
	if ns.PID {
		flags |= syscall.CLONE_NEWPID
	}
	if ns.IPC {
		flags |= syscall.CLONE_NEWIPC
	}
	if ns.Net {
		flags |= syscall.CLONE_NEWNET
	}
	if ns.UTS || ns.Hostname != "" {
		flags |= syscall.CLONE_NEWUTS
	}
	uid, gid := cfg.User.UID, cfg.User.GID
	a := &syscall.SysProcAttr{
		Cloneflags: flags,
		// No parent-death signal: when the launcher dies the stage sees
		// end-of-file on its pipe and must live on long enough to kill the
		// payload's whole process tree and the FUSE server.
	}
	if f := cfg.Fakeroot; f != nil {
		// The stage becomes root once its maps exist (becomeRoot). Written
		// by the helpers after the clone (runStage), its uid is unmapped
		// at its execve and would lose every capability: all are kept as
		// ambient (the payload gets them as root in its namespace).
		a.AmbientCaps = allCaps()
		if !f.helpers() {
			a.UidMappings = sysProcMaps(f.UIDMap)
			a.GidMappings = sysProcMaps(f.GIDMap)
			// Root's identity maps (fakeroot.ForUser) allow setgroups,
			// so its programs can switch users (apt-get's _apt).
			a.GidMappingsEnableSetgroups = fakeroot.Identity(f.UIDMap, f.GIDMap)
		}
		return a
	}
	if !inUserNS {
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	if uid != 0 {
		// A non-root uid loses its capabilities at execve; keep the ones
		// the stage needs (mounting, dropping the bounding set) as ambient.
		// Kernel overlayfs also wants CAP_DAC_OVERRIDE from its mounter (for
		// its work directory); in this user namespace it covers only files
		// of the user's own uid and gid, the only ones mapped.
		// The FUSE servers' capability (fuse.ServerCaps) must be there too,
		// for the stage to pass it on to them.
		a.AmbientCaps = append([]uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP, unix.CAP_DAC_OVERRIDE}, fuse.ServerCaps...)
		if cfg.Namespaces.Net {
			// Bringing up loopback in the new network namespace.
			a.AmbientCaps = append(a.AmbientCaps, unix.CAP_NET_ADMIN)
		}
	}
	return a
}

// explainStartError turns a failed clone into advice.
func explainStartError(err error) error {
	advice := UserNSAdvice(err)
	switch {
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("cannot create the container namespaces: %w%s", err, advice)
	case advice != "":
		return fmt.Errorf("cannot create a user namespace: %w%s", err, advice)
	}
	return fmt.Errorf("starting container stage: %w", err)
}

// UserNSAdvice is the one wording of what to check when making a user
// namespace failed with err (" (...)", to append to the error), or "" when
// err says nothing about the host's settings. Used for the clone of the
// stage and for the constructor's unshare (cmd/launch).
func UserNSAdvice(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EUSERS):
		return " (user namespaces are disabled or exhausted here: ask your admin to set user.max_user_namespaces > 0)"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return " (unprivileged user namespaces are not allowed here: check kernel.unprivileged_userns_clone " +
			"and AppArmor's kernel.apparmor_restrict_unprivileged_userns)"
	case errors.Is(err, syscall.EINVAL):
		return " (the kernel lacks user namespace support)"
	}
	return ""
}
