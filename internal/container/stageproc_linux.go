// Starting and reaping stage processes, and the Config pipe between the
// launcher and a stage: what run, join and --sharens share.

package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
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

// stagePipeFD is the descriptor on which the stage receives its Config and
// then watches for the launcher's death.
const stagePipeFD = 3

// readConfig reads the length-prefixed JSON Config from the launcher.
func readConfig(r io.Reader) (*Config, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("reading container config: %w (run launch exec, not the stage directly)", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 16<<20 {
		return nil, errors.New("reading container config: too large")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading container config: %w", err)
	}
	cfg := &Config{}
	if err := json.Unmarshal(buf, cfg); err != nil {
		return nil, fmt.Errorf("decoding container config: %w", err)
	}
	return cfg, nil
}

// execJoin re-executes launch as preinit.JoinArg's command line, to run
// spec's payload in the namespaces (flags) of the process that pidfd
// holds: the payload's Config is base (the JSON of that process's Config)
// with this command line's mode, command, environment and working
// directory. what names the target in messages; keep, when not -1, is a
// descriptor the joined launch holds until it exits.
func execJoin(spec *runspec.Spec, base []byte, pidfd, flags int, what string, keep int) (int, error) {
	cfg := &Config{}
	if err := json.Unmarshal(base, cfg); err != nil {
		return 0, fmt.Errorf("%s: decoding what to join: %w", what, err)
	}
	env, err := environment(spec.Env, spec.Site)
	if err != nil {
		return 0, err
	}
	cfg.Env, cfg.EnvOverrides = env.Base, env.Overrides
	cfg.Mode, cfg.Args, cfg.Shell = spec.Mode, spec.Args, spec.Shell
	cfg.Cwd, cfg.Pwd, cfg.QuietCwd = spec.Cwd, spec.Pwd, false
	cfg.LogLevel, cfg.Instance, cfg.ShareNS = spec.LogLevel, nil, nil
	cfg.InstanceName = ""
	if n, ok := strings.CutPrefix(what, InstanceScheme); ok {
		cfg.InstanceName = n
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return 0, fmt.Errorf("encoding the payload's config: %w", err)
	}
	mfd, err := unix.MemfdCreate("launch-join", 0) // inherited by the exec below
	if err != nil {
		return 0, fmt.Errorf("passing the payload's config: %w", err)
	}
	f := os.NewFile(uintptr(mfd), "launch-join")
	if _, err := f.Write(data); err != nil {
		return 0, fmt.Errorf("passing the payload's config: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("passing the payload's config: %w", err)
	}
	inherit := []int{pidfd}
	if keep >= 0 {
		inherit = append(inherit, keep)
	}
	for _, fd := range inherit {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return 0, fmt.Errorf("joining %s: passing descriptor %d: %w", what, fd, err)
		}
	}
	argv := []string{os.Args[0], preinit.JoinArg, strconv.Itoa(pidfd), strconv.Itoa(flags),
		strconv.Itoa(mfd), what}
	if keep >= 0 {
		argv = append(argv, strconv.Itoa(keep))
	}
	err = unix.Exec("/proc/self/exe", argv, os.Environ())
	return 0, fmt.Errorf("joining %s: re-executing launch: %w", what, err)
}

// SharensScheme names the shared namespaces in a joined launch's command
// line (for ps and messages).
const SharensScheme = "sharens://"

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
