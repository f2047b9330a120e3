package container

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/reap"
	"github.com/launch-hpc/launch/internal/timeline"
)

// supervisor is the stage's state: what it started and must stop.
type supervisor struct {
	reaper *reap.Reaper
	sigs   <-chan os.Signal
	gone   <-chan struct{}
	log    *msg.Logger
	tl     *timeline.T // nil unless LAUNCH_TIMELINE is set

	proc    *os.File // the host's /proc, opened before the pivot
	pidNS   bool
	payload int
	// res is what assembling the root started (FUSE servers, the shared
	// mount's holder or client, locks): the supervisor's from then on.
	res started

	// holdOK: this stage may serve its image mount to other launches
	// (it reports its status before it cleans up: see stage).
	holdOK bool
	// window is how long a held mount is kept warm (Config.Linger);
	// ended: the payload was sent a terminating signal or the launcher
	// died, and nothing is kept warm (warm_linux.go).
	window time.Duration
	ended  bool

	inherited inherited // the caller's descriptors, for the payload only

	// role, when set, chooses the payload and waits for it in place of
	// payloadCommand and wait (an instance's init: instance_linux.go;
	// runContainer sets it).
	role payloadRole
	// imgLayers are the servers of overlay images, which the assembly
	// adds to (overlayimg_linux.go).
	imgLayers *imageLayers
	// warm names this launch for a warm container, when the constructor
	// made a request (warmroot_linux.go).
	warm *preinit.WarmRequest
	// kept are the containers this stage serves as a holder.
	kept kept
}

// payloadRole is another way for a stage to choose its payload (no program:
// none is started) and to wait once it has started.
type payloadRole interface {
	command(sv *supervisor, cfg *Config) (argv0 string, argv, env []string, err error)
	wait(sv *supervisor, cfg *Config) int
}

// serverWarnDelay is how long the payload may outlive the FUSE server
// before the user is warned: when a whole process group or Slurm step is
// signalled, the server and the payload die of the same signal together.
const serverWarnDelay = 500 * time.Millisecond

// run sets up the container, starts the payload and waits for it. It
// returns the payload's exit status.
func (sv *supervisor) run(cfg *Config) (int, error) {
	sv.pidNS = cfg.Namespaces.PID
	sv.window = cfg.Linger
	proc, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("opening /proc: %w", err)
	}
	sv.proc = proc
	endWatch := sv.watchSetup()
	defer endWatch()
	t0 := time.Now()
	root, res, err := assembleRoot(cfg, deps{log: sv.log, tl: sv.tl, fork: sv.reaper, holdOK: sv.holdOK, imgLayers: sv.imgLayers})
	sv.res = res // ours from now on, also when the assembly failed
	if err != nil {
		return 0, err
	}
	sv.tl.Mark("root-assembled")
	if err := pivot(root.path, cfg, sv.log); err != nil {
		return 0, err
	}
	if err := setUpNamespaces(cfg.Namespaces); err != nil {
		return 0, err
	}
	sv.tl.Mark("pivoted")
	var argv0 string
	var argv, env []string
	if sv.role != nil {
		argv0, argv, env, err = sv.role.command(sv, cfg)
	} else {
		argv0, argv, env, err = payloadCommand(cfg, readEnvScripts(), sv.log)
	}
	if errors.Is(err, errNoTest) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sv.log.Debugf("container ready in %v; running %q", time.Since(t0), argv)
	sv.tl.Mark("command-resolved")
	if root.fromFUSE && argv0 != "" && !sv.res.client.WarmMount() {
		prefetchProgram(argv0, env, root.imageDev)
		sv.tl.Mark("prefetched")
	}
	if err := dropPrivileges(cfg.Fakeroot != nil); err != nil {
		return 0, err
	}
	endWatch()
	if code, stop := sv.stopBeforeStart(); stop {
		return code, nil
	}
	if argv0 == "" && sv.role != nil { // nothing to run
		return sv.role.wait(sv, cfg), nil
	}
	wd, _ := os.Getwd()
	if err := sv.inherited.pass(); err != nil {
		return 0, err
	}
	pid, err := sv.reaper.ForkExec(argv0, argv, &syscall.ProcAttr{
		Dir:   wd,
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	sv.inherited.close()
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv0, err)
	}
	sv.payload = pid
	sv.tl.Mark("payload-started")
	sv.res.holder.Open() // committed now: other launches may use the image mount
	sv.offerContainer(cfg, root, argv0, argv, env, wd)
	if sv.role != nil {
		return sv.role.wait(sv, cfg), nil
	}
	return sv.wait(), nil
}

// watchSetup acts at once, while the container is set up, on a terminating
// signal (TERM, INT, HUP, QUIT) or the launcher's death, which the set-up
// would otherwise see only once it is done: a hostile or broken image can
// keep it waiting (on a FUSE server that does not answer, on anything of
// the image it reads), and nothing else would end it. It then ends the
// stage with abort (128+N for signal N; 137 when the launcher died). Other
// signals have no payload to go to yet and are dropped. The returned end
// stops the watch (the payload is about to start: from then on wait acts
// on both); it returns once the watch has stopped, and never if the watch
// is ending the stage. Calling it again does nothing.
//
// It must be called, and end called, on the stage's locked thread, which
// has the forwarded signals blocked in between: a signal sent to the
// process goes to its main thread when that thread does not block it, and
// there waits for as long as the thread sleeps in a request to a FUSE
// server (those sleeps end only for a fatal signal), so it would never
// reach the watch; blocked there, the kernel hands it to a thread of Go's
// that is free to run the handler. end restores the mask, which the payload
// inherits.
func (sv *supervisor) watchSetup() (end func()) {
	var block, old unix.Sigset_t
	for _, s := range forwarded {
		n := uint(s.(syscall.Signal)) - 1
		block.Val[n/64] |= 1 << (n % 64)
	}
	masked := unix.PthreadSigmask(unix.SIG_BLOCK, &block, &old) == nil
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case s := <-sv.sigs:
				if code, ok := terminating(s); ok {
					sv.log.Debugf("%v during set-up: stopping", s)
					sv.abort(code)
				}
			case <-sv.gone:
				sv.abort(reap.Signalled(syscall.SIGKILL))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-stopped
			if masked {
				_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
			}
		})
	}
}

// terminating reports whether s ends the stage when no payload runs yet,
// and the exit status it then ends with.
func terminating(s os.Signal) (int, bool) {
	switch s {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
		return reap.Signalled(s.(syscall.Signal)), true
	}
	return 0, false
}

// abort ends the stage during set-up, from any goroutine, with exit status
// code: it kills every process below it (FUSE servers, and anything they
// started) and exits, whatever the set-up is doing. There is nothing else
// to undo: no payload runs yet, the mounts live in this process's mount
// namespace, locks and sockets are released when it exits, and the launcher
// exits with this status when it sees this process go. Standard error is
// first pointed at /dev/null: the set-up, interrupted, must not print a
// spurious error while the process exits.
func (sv *supervisor) abort(code int) {
	if null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Dup3(null, 2, 0)
	}
	// No child is started while the others are killed; but a start that
	// does not return (an exec that waits on a FUSE mount) must not keep
	// the stage alive: after a second, kill what there is.
	sv.reaper.StopStarting(time.Second)
	if sv.proc != nil && !sv.pidNS {
		// With --pid, the kernel kills the namespace's processes when
		// this one, its init, exits.
		for i := 0; i < 3; i++ { // again: a process may fork as it is killed
			pids := reap.Descendants(sv.proc, os.Getpid())
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				if !sv.imgLayers.spared(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	sv.imgLayers.abortStop(sv.proc)
	os.Exit(code)
}

// stopBeforeStart drains signals that arrived during set-up. A terminating
// one (TERM, INT, HUP, QUIT) or the launcher's death means the payload must
// not start; the others (USR1, USR2, CONT, ALRM — Slurm sends CONT with
// every scancel) have no payload to go to yet and are dropped.
func (sv *supervisor) stopBeforeStart() (int, bool) {
	for {
		select {
		case s := <-sv.sigs:
			if code, ok := terminating(s); ok {
				return code, true
			}
		case <-sv.gone:
			return 255, true
		default:
			return 0, false
		}
	}
}

// wait forwards signals to the payload until it exits, and returns its
// status in shell form.
func (sv *supervisor) wait() int {
	var warn, lostWarn <-chan time.Time
	var lost <-chan struct{}
	if sv.res.client != nil {
		lost = sv.res.client.Lost()
	}
	for {
		select {
		case <-lost:
			lost = nil
			lostWarn = time.After(serverWarnDelay)
		case <-lostWarn:
			who := "the launch"
			if sv.res.client.HolderPid > 0 { // 0: in another PID namespace
				who = fmt.Sprintf("launch pid %d", sv.res.client.HolderPid)
			}
			sv.log.Warnf("%s, which shared its image mount with this one, was killed or lost its squashfuse server; the image is no longer readable", who)
		case s := <-sv.sigs:
			if fromTerminal(s) {
				continue
			}
			if _, ok := terminating(s); ok {
				sv.ended = true
			}
			_ = syscall.Kill(sv.payload, s.(syscall.Signal))
		case ev := <-sv.reaper.Exits():
			switch {
			case ev.Pid == sv.payload:
				sv.tl.Mark("payload-reaped")
				return reap.Status(ev.Status)
			case sv.res.server.Exited(ev):
				warn = time.After(serverWarnDelay)
			default:
				sv.imgLayers.exited(ev)
			}
		case <-warn:
			why := reap.Describe(sv.res.server.Status())
			if e := strings.TrimSpace(sv.res.server.Stderr()); e != "" {
				why += ": " + e
			}
			sv.log.Warnf("the squashfuse server exited (%s); the image is no longer readable", why)
		case <-sv.gone:
			// The launcher was killed: take everything down with it.
			sv.ended = true
			return reap.Signalled(syscall.SIGKILL)
		}
	}
}

// cleanup kills the FUSE server and every process the payload left
// behind, calls afterTree (when not nil), and waits for the server to be
// reaped. The server goes first: it
// dies while the leftovers are looked for, and any of them waiting on the
// image is released. In a PID namespace the kernel kills the leftovers when
// the stage (their init) exits.
//
// A holder of a shared image mount whose mount is in use keeps it, and
// its server, until the last launch using it is gone (launches that start
// meanwhile join it too), and then for its warm window (warm_linux.go),
// after afterTree has let the launcher exit.
func (sv *supervisor) cleanup(afterTree func()) {
	stepFd, warm := -1, false
	switch {
	case sv.res.holder == nil:
	case sv.ended:
		sv.log.Debugf("not keeping the image mount warm: the launch was signalled or its launcher killed")
	default:
		var why string
		if stepFd, warm, why = warmBound(sv.window, sv.proc); why != "" {
			sv.log.Debugf("not keeping the image mount warm: %s", why)
		}
	}
	shared := !sv.res.holder.StopIfUnused(warm)
	if !shared {
		sv.res.server.Stop() // not once reaped: its pid may belong to someone else
		if stepFd >= 0 {
			unix.Close(stepFd)
		}
		warm = false
	}
	if sv.proc != nil && !sv.pidNS {
		self := os.Getpid()
		for i := 0; i < 200 && reap.HasChildren(); i++ {
			left := 0
			for _, pid := range reap.Descendants(sv.proc, self) {
				if pid == sv.res.server.LivePid() || sv.imgLayers.spared(pid) {
					continue
				}
				left++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if left == 0 {
				break
			}
			sv.drainExits(5 * time.Millisecond)
		}
	}
	sv.tl.Mark("payload-tree-killed")
	sv.imgLayers.stop(sv.res.overlay, sv.proc, sv.reaper.Exits(), func(ev reap.Exit) { sv.res.server.Exited(ev) }, sv.log)
	sv.res.client.Close()
	if afterTree != nil {
		afterTree()
	}
	if shared {
		window := time.Duration(0)
		if warm {
			window = sv.window
		}
		sv.linger(window, lingerQuit(stepFd))
		sv.tl.Mark("share-clients-gone")
		sv.res.server.Stop()
	}
	if sv.res.server != nil {
		sv.res.server.Wait(sv.reaper.Exits(), time.Second)
		sv.tl.Mark("fuse-server-reaped")
	}
}

// linger waits until no other launch uses the shared image mount, and
// then for window more (share.Holder.Linger), reaping meanwhile: a FUSE
// server that dies in that time must be seen as reaped, or its pid,
// recycled, could be killed afterwards; it also ends the holder, and the
// clients are told (Holder.Abandon). A terminating signal (TERM, INT, HUP,
// QUIT) or stepQuit closing ends the warm window at once, but not the
// sharing with launches that still use the mount: the launcher has exited
// already, and the mount is their image; SIGKILL ends the holder.
func (sv *supervisor) linger(window time.Duration, stepQuit <-chan struct{}) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		sv.res.holder.Linger(window, quit)
		close(done)
	}()
	var once sync.Once
	end := func() { once.Do(func() { close(quit) }) }
	for {
		select {
		case <-done:
			return
		case <-stepQuit:
			stepQuit = nil
			sv.log.Debugf("the job step ended: not keeping the image mount warm")
			end()
		case s := <-sv.sigs:
			if _, ok := terminating(s); ok {
				end()
			}
		case ev := <-sv.reaper.Exits():
			if sv.res.server.Exited(ev) {
				sv.res.holder.Abandon()
			}
			sv.imgLayers.exited(ev)
		}
	}
}

// drainExits discards exit events for up to d.
func (sv *supervisor) drainExits(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-sv.reaper.Exits():
			sv.res.server.Exited(ev)
			sv.imgLayers.exited(ev)
		case <-t.C:
			return
		}
	}
}
