package container

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/instance"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/reap"
)

// An instance's init is the stage of a launch started detached by
// `launch instance start|run` (docs/instances.md). It differs from a plain
// stage in three things: what it runs (the startscript, or nothing), that
// it tells `instance start` when it is up (instance.SendReady: a pidfd of
// itself, and what joins need), and that the end of its payload does not
// end it: it lives until it is signalled (stop), its launcher dies, or it
// is killed. It always has a PID namespace of its own (internal/cli asks
// for one), so that its end ends every process of the instance.

// instanceTick is how often a stopping init looks whether the instance's
// processes are gone.
const instanceTick = 20 * time.Millisecond

// instanceGrace is how long a stopping init without a usable /proc of its
// PID namespace waits after its payload before it exits (taking the rest
// with it).
const instanceGrace = time.Second

// instanceRole is the payloadRole of an instance's init.
type instanceRole struct{}

// command is the payload of an instance's init: for `instance run`
// payloadCommand's (the runscript); for `instance start` the image's
// startscript with the arguments, or none at all ("" as the program) when
// the image has no startscript: the init then only waits to be stopped.
func (instanceRole) command(sv *supervisor, cfg *Config) (string, []string, []string, error) {
	in := cfg.Instance
	if in == nil || !in.Start {
		return payloadCommand(cfg, readEnvScripts(), sv.log)
	}
	if err := executable(layout.Startscript); err != nil {
		if fi, serr := os.Stat(layout.Startscript); serr == nil && !fi.Mode().IsRegular() {
			return "", nil, nil, fmt.Errorf("startscript %s: %w", layout.Startscript, err)
		}
		sv.log.Verbosef("instance %s: the image has no startscript; waiting to be stopped", in.Name)
		return "", nil, nil, nil
	}
	c := *cfg
	c.Mode = ModeExec
	c.Args = append([]string{layout.Startscript}, cfg.Args...)
	return payloadCommand(&c, readEnvScripts(), sv.log)
}

// joinConfig is what a launch joining the instance of cfg needs
// (join_linux.go): cfg itself, less the instance's own settings.
func joinConfig(cfg *Config) ([]byte, error) {
	c := *cfg
	c.Instance, c.ShareNS = nil, nil
	return json.Marshal(&c)
}

// wait is supervisor.wait for an instance's init: it reports the instance up,
// then passes every signal on to all the instance's processes, and once a
// terminating one (TERM, INT, HUP, QUIT) has come, ends when they are all
// gone (0). The end of the payload alone does not end it. The launcher's
// death does (SIGKILL's status), as does a failed handshake (255).
func (instanceRole) wait(sv *supervisor, cfg *Config) int {
	in := cfg.Instance
	conn := os.NewFile(uintptr(in.ReadyFD), "instance-ready")
	join, err := joinConfig(cfg)
	if err == nil {
		ns := cfg.Namespaces
		err = instance.SendReady(conn, &instance.Ready{
			Namespaces: instance.Namespaces{PID: ns.PID, IPC: ns.IPC, Net: ns.Net, UTS: ns.UTS || ns.Hostname != ""},
			Join:       join,
		}, instance.AckTimeout)
	}
	conn.Close()
	if err != nil {
		sv.log.Warnf("instance %s: %v; stopping", in.Name, err)
		return 255
	}
	sv.tl.Mark("instance-ready")
	nsProc := sv.nsProc()
	if nsProc != nil {
		defer nsProc.Close()
	}
	var tick <-chan time.Time
	var graceEnd time.Time
	stopping := false
	for {
		select {
		case s := <-sv.sigs:
			if fromTerminal(s) {
				continue
			}
			sv.signalInstance(s.(syscall.Signal))
			if _, ok := terminating(s); ok && !stopping {
				stopping = true
				t := time.NewTicker(instanceTick)
				defer t.Stop()
				tick = t.C
				sv.log.Verbosef("instance %s: %v: stopping", in.Name, s)
			}
		case ev := <-sv.reaper.Exits():
			if ev.Pid == sv.payload && sv.payload > 0 {
				sv.payload = 0
				graceEnd = time.Now().Add(instanceGrace)
				sv.log.Verbosef("instance %s: its payload ended (%s)", in.Name, reap.Describe(ev.Status))
			} else {
				sv.res.server.Exited(ev)
			}
		case <-tick:
			if sv.instanceEmpty(nsProc, graceEnd) {
				return 0
			}
		case <-sv.gone:
			return reap.Signalled(syscall.SIGKILL)
		}
	}
}

// nsProc opens the /proc of the instance's PID namespace (the container's
// /proc, after the pivot), or nil when it is not that (no PID namespace,
// --no-mount proc).
func (sv *supervisor) nsProc() *os.File {
	if !sv.pidNS {
		return nil
	}
	if self, err := os.Readlink("/proc/self"); err != nil || self != "1" {
		return nil
	}
	f, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	return f
}

// signalInstance sends s to every process of the instance but its init
// (kill(-1) in its PID namespace; the FUSE servers block what they must
// not die of), or without a PID namespace to the payload.
func (sv *supervisor) signalInstance(s syscall.Signal) {
	if sv.pidNS {
		_ = syscall.Kill(-1, s)
		return
	}
	if sv.payload > 0 {
		_ = syscall.Kill(sv.payload, s)
	}
}

// instanceEmpty reports whether no process of the instance is left but its
// init and FUSE servers; without nsProc, whether the payload has ended and
// graceEnd passed.
func (sv *supervisor) instanceEmpty(nsProc *os.File, graceEnd time.Time) bool {
	if nsProc == nil {
		return sv.payload == 0 && time.Now().After(graceEnd)
	}
	for _, pid := range reap.Descendants(nsProc, 1) {
		if pid != sv.res.server.LivePid() && pid != sv.res.overlay.LivePid() {
			return false
		}
	}
	return true
}

// instanceReadyFD marks an instance's handshake descriptor close-on-exec,
// before the inherited descriptors are taken: it is launch's own.
func instanceReadyFD(cfg *Config) {
	if cfg.Instance != nil {
		unix.CloseOnExec(cfg.Instance.ReadyFD)
	}
}

// watchJob is closed when the batch job step that an instance was started
// in ends (its slurmstepd exits, or is gone already); nil when cfg is not
// such an instance. The launcher side of the stage watches it, from the
// host's PID namespace, and kills the instance's init then: a job's
// instance must not outlive the job, even where the batch system finds
// the job's processes by parentage (proctrack/linuxproc), which a
// detached process escapes.
func watchJob(cfg *Config) <-chan struct{} {
	in := cfg.Instance
	if in == nil || in.JobPid <= 0 {
		return nil
	}
	done := make(chan struct{})
	p, err := instance.OpenAnyProc(in.JobPid, in.JobStart)
	if err != nil {
		close(done)
		return done
	}
	go func() {
		defer p.Close()
		for !p.Wait(time.Hour) {
		}
		close(done)
	}()
	return done
}
