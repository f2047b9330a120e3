package container

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/reap"
	"github.com/launch-hpc/launch/internal/timeline"
)

// StageMain is the container stage, run as "launch __launch_stage" inside the
// new namespaces. It returns the exit status for the stage process.
func StageMain(_ []string) int {
	// Never unlocked: the payload's and the FUSE server's parent-death
	// signal, and the privileges dropped before the payload starts, belong
	// to this one thread.
	runtime.LockOSThread()
	tl := timeline.FromEnv("stage")
	tl.Mark("main")

	pipe := os.NewFile(stagePipeFD, "stage-pipe")
	syscall.CloseOnExec(stagePipeFD)
	// The ambient capabilities that carried the stage's across execve
	// (stageSysProcAttr) are for no child of it.
	if err := clearInheritable(); err != nil {
		msg.Fatal(os.Stderr, err)
		return 255
	}
	cfg, err := readConfig(pipe)
	if err != nil {
		msg.Fatal(os.Stderr, err)
		return 255
	}
	tl.Mark("config-read")
	if cfg.Fakeroot != nil {
		if err := becomeRoot(); err != nil {
			msg.Fatal(os.Stderr, err)
			return 255
		}
	}
	code, err := runContainer(cfg, pipe, tl, nil, nil)
	if err != nil {
		msg.Fatal(os.Stderr, err)
		return 255
	}
	return code
}

// runContainer builds the container for cfg in this process's namespaces, runs the
// payload and supervises it, and cleans up. parent is a pipe or socket that
// reads end-of-file when the launcher is gone. report, when not nil, is
// called with the payload's exit status as soon as the payload and what it
// left behind are killed, before the rest of the clean-up (see below). An
// error means the payload could not be started (the clean-up is done by
// then). warm, when set, names this launch for a warm container (warmroot_linux.go).
func runContainer(cfg *Config, parent *os.File, tl *timeline.T, report func(int), warm *preinit.WarmRequest) (int, error) {
	log := msg.Stderr(msg.Level(cfg.LogLevel))
	sigs := make(chan os.Signal, 32)
	notify(sigs, keepIgnored())
	// Before anything is started: only the payload gets the caller's
	// descriptors.
	instanceReadyFD(cfg)
	if cfg.ShareNS != nil {
		unix.CloseOnExec(cfg.ShareNS.ListenFD)
	}
	inh, err := takeInherited()
	if err != nil {
		return 0, err
	}
	rp := reap.New()
	gone := make(chan struct{})
	go watchLauncher(parent, gone)

	if !cfg.Namespaces.PID {
		// Orphans of the payload come to us, so none can escape the cleanup.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("becoming child subreaper: %w", err)
		}
	}

	sv := &supervisor{reaper: rp, sigs: sigs, gone: gone, log: log, tl: tl,
		holdOK: report != nil && cfg.Layers == nil, inherited: inh, imgLayers: &imageLayers{}, warm: warm}
	switch {
	case cfg.Instance != nil:
		sv.role = instanceRole{}
	case cfg.ShareNS != nil:
		sv.role = sharensRole{}
	}
	code, err := sv.run(cfg)
	// The status goes to the launcher once the payload's leftovers are
	// killed, before the FUSE server is reaped. Not with layers: an
	// overlay directory stays locked, and a writable layer mounted, until
	// this process is gone, and a next container on it must not find it
	// in use; then the launcher learns the status from this process's exit.
	var afterTree func()
	if err == nil && report != nil && cfg.Layers == nil {
		afterTree = func() { report(code) }
	}
	sv.cleanup(afterTree)
	tl.Mark("exit")
	return code, err
}

// runHere runs the container in this very process, which is already in its
// own user and mount namespaces (internal/preinit): no stage is re-executed.
// The waiting parent hears the payload's exit status on pre.Parent as soon
// as it is known and exits with it while this process cleans up.
func runHere(cfg *Config, pre preinit.Result) (int, error) {
	runtime.LockOSThread() // as in StageMain
	tl := timeline.FromEnv("stage")
	tl.Mark("run-here")
	report := func(code int) {
		tl.Mark("status-sent")
		reportStatus(pre.Parent, code, tl != nil)
	}
	return runContainer(cfg, pre.Parent, tl, report, pre.Warm)
}

// reportStatus hands the payload's exit status to the waiting parent, which
// exits with it. This process's standard input, output and error are first
// pointed at /dev/null (standard error stays with keepStderr, for the
// timeline), so that a caller reading them sees end-of-file as soon as the
// payload and its leftovers are gone, not after the clean-up.
func reportStatus(parent *os.File, code int, keepStderr bool) {
	fds := []int{0, 1, 2}
	if keepStderr {
		fds = fds[:2]
	}
	if null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
		for _, fd := range fds {
			_ = unix.Dup3(null, fd, 0)
		}
		_ = unix.Close(null)
	}
	_, _ = parent.Write([]byte{byte(code)})
}
