package container

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/launch-hpc/launch/internal/fuse"
	"github.com/launch-hpc/launch/internal/msg"
)

// supervisor is the stage's state: what it started and must stop.
type supervisor struct {
	reaper *reaper
	sigs   <-chan os.Signal
	gone   <-chan struct{}
	log    *msg.Logger

	proc    *os.File // the host's /proc, opened before the pivot
	pidNS   bool
	server  *fuse.Server
	payload int
	// serverGone is set once the FUSE server's exit has been reaped, so
	// cleanup does not wait for an exit it already consumed.
	serverGone bool
}

// run sets up the container, starts the payload and waits for it. It
// returns the payload's exit status.
func (sv *supervisor) run(cfg *Config) (int, error) {
	sv.pidNS = cfg.Namespaces.PID
	proc, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("opening /proc: %w", err)
	}
	sv.proc = proc
	t0 := time.Now()
	asm, err := newAssembler(cfg, sv)
	if err != nil {
		return 0, err
	}
	if err := asm.build(); err != nil {
		return 0, err
	}
	if err := asm.pivot(); err != nil {
		return 0, err
	}
	argv0, argv, env, err := payloadCommand(cfg, asm.hasEnvScripts())
	if err != nil {
		return 0, err
	}
	sv.log.Debugf("container ready in %v; running %q", time.Since(t0), argv)
	if err := dropPrivileges(); err != nil {
		return 0, err
	}
	if code, stop := sv.stopBeforeStart(); stop {
		return code, nil
	}
	wd, _ := os.Getwd()
	pid, err := sv.reaper.start(argv0, argv, &syscall.ProcAttr{
		Dir:   wd,
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv0, err)
	}
	sv.payload = pid
	return sv.wait(), nil
}

// stopBeforeStart drains signals that arrived during set-up. A terminating
// one (TERM, INT, HUP, QUIT) or the launcher's death means the payload must
// not start; the others (USR1, USR2, CONT, ALRM — Slurm sends CONT with
// every scancel) have no payload to go to yet and are dropped.
func (sv *supervisor) stopBeforeStart() (int, bool) {
	for {
		select {
		case s := <-sv.sigs:
			switch s {
			case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT:
				return 128 + int(s.(syscall.Signal)), true
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
	for {
		select {
		case s := <-sv.sigs:
			if fromTerminal(s) {
				continue
			}
			_ = syscall.Kill(sv.payload, s.(syscall.Signal))
		case ev := <-sv.reaper.exits:
			switch ev.pid {
			case sv.payload:
				if ev.status.Signaled() {
					return 128 + int(ev.status.Signal())
				}
				return ev.status.ExitStatus()
			case sv.serverPid():
				sv.serverGone = true
				sv.log.Warnf("the squashfuse server exited (%s); the image is no longer readable", sv.server.Stderr())
			}
		case <-sv.gone:
			// The launcher was killed: take everything down with it.
			return 128 + int(syscall.SIGKILL)
		}
	}
}

func (sv *supervisor) serverPid() int {
	if sv.server == nil {
		return -1
	}
	return sv.server.Pid
}

// cleanup kills every process the payload left behind, then the FUSE
// server. In a PID namespace the kernel does this when the stage (its
// init) exits.
func (sv *supervisor) cleanup() {
	if sv.proc != nil && !sv.pidNS {
		self := os.Getpid()
		for i := 0; i < 200; i++ {
			left := 0
			for _, pid := range descendants(sv.proc, self) {
				if pid == sv.serverPid() {
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
	if sv.server != nil && !sv.serverGone {
		sv.server.Stop()
		sv.waitFor(sv.server.Pid, time.Second)
	}
}

// drainExits discards exit events for up to d.
func (sv *supervisor) drainExits(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-sv.reaper.exits:
			if ev.pid == sv.serverPid() {
				sv.serverGone = true
			}
		case <-t.C:
			return
		}
	}
}

// waitFor waits up to d for pid to be reaped.
func (sv *supervisor) waitFor(pid int, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-sv.reaper.exits:
			if ev.pid == pid {
				return
			}
		case <-t.C:
			return
		}
	}
}
