package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/instance"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/reap"
	"github.com/launch-hpc/launch/internal/runspec"
)

// InstanceScheme prefixes the image argument that names a running
// instance (`launch exec instance://NAME ...`).
const InstanceScheme = "instance://"

// maxJoinConfig bounds the Config a joining launch reads.
const maxJoinConfig = 16 << 20

// joinInstance runs spec's payload in the running instance name: it finds
// the user's instance (internal/instance: the record checked, its init
// held by a pidfd that is checked against the recorded start time and the
// user's uid), makes the payload's Config from the instance's and this
// command line's (mode, command, environment, working directory), and
// re-executes launch as JoinArg's command line, whose constructor enters
// the init's namespaces by that pidfd before the Go runtime starts
// (JoinMain goes on). Options that change the container itself (binds,
// namespaces, layers…) are refused: the instance's are fixed at its start.
func joinInstance(spec *runspec.Spec, name string, pre preinit.Result) (int, error) {
	if err := refuseForJoin(spec); err != nil {
		return 0, err
	}
	if pre.Done {
		return 0, fmt.Errorf("instance %s: this launch already runs in namespaces of its own and cannot join it", name)
	}
	if err := instance.CheckName(name); err != nil {
		return 0, err
	}
	user := CurrentUser()
	store, err := instance.Open(os.Getuid(), user.Home, os.Getenv)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	rec, proc, err := store.Lookup(name)
	switch {
	case errors.Is(err, instance.ErrNotFound):
		return 0, fmt.Errorf("no instance %s is running (see launch instance list)", name)
	case errors.Is(err, instance.ErrGone):
		return 0, fmt.Errorf("instance %s is no longer running (its stale record is removed)", name)
	case err != nil:
		return 0, err
	}
	defer proc.Close()
	flags := unix.CLONE_NEWUSER | unix.CLONE_NEWNS
	ns := rec.Namespaces
	for _, n := range []struct {
		on   bool
		flag int
	}{{ns.PID, unix.CLONE_NEWPID}, {ns.IPC, unix.CLONE_NEWIPC}, {ns.Net, unix.CLONE_NEWNET}, {ns.UTS, unix.CLONE_NEWUTS}} {
		if n.on {
			flags |= n.flag
		}
	}
	return execJoin(spec, rec.Join, proc.FD(), flags, InstanceScheme+name, -1)
}

// refuseForJoin refuses the options that would change the container: a
// join gets the instance's.
func refuseForJoin(s *runspec.Spec) error {
	for _, o := range []struct {
		set  bool
		flag string
	}{
		{len(s.Binds) > 0, "--bind/--mount (or LAUNCH_BIND)"}, {s.Home != nil, "--home"}, {s.NoHome, "--no-home"},
		{s.Contain, "--contain"}, {s.Namespaces.Extra(), "--pid/--ipc/--net/--uts/--hostname"},
		{s.Writable, "--writable"}, {s.WritableTmpfs, "--writable-tmpfs"}, {len(s.Overlays) > 0, "--overlay"},
		{len(s.Scratch) > 0, "--scratch"}, {s.Workdir != "", "--workdir"}, {s.Fakeroot, "--fakeroot"},
	} {
		if o.set {
			return fmt.Errorf("%s cannot be used with %sNAME: a running instance keeps the mounts and namespaces it started with", o.flag, InstanceScheme)
		}
	}
	return nil
}

// JoinMain is a launch that has joined an instance's namespaces
// (preinit.JoinArg's command line; args are those after it). It reads the
// payload's Config, runs the payload there as the stage would (no
// privileges, parent-death SIGKILL), passes signals on, and returns its
// exit status. Processes the payload leaves behind belong to the instance
// (its PID namespace) and end with it; a --sharens join, which has no PID
// namespace, runs the payload through a stage of its own
// (superviseJoinStage) that kills them, even once this launch is SIGKILLed.
func JoinMain(args []string, pre preinit.Result) int {
	code, err := joinMain(args, pre)
	if err != nil {
		msg.Fatal(os.Stderr, err)
		return 255
	}
	return code
}

func joinMain(args []string, pre preinit.Result) (int, error) {
	runtime.LockOSThread() // the payload's parent-death signal, the dropped privileges
	what, shared := "instance", false
	if len(args) > 3 {
		if n, ok := strings.CutPrefix(args[3], InstanceScheme); ok {
			what = "instance " + n
		} else {
			what, shared = "the shared namespaces of "+strings.TrimPrefix(args[3], SharensScheme), true
		}
	}
	if len(args) > 4 { // held until this process exits: not the payload's
		if fd, err := strconv.Atoi(args[4]); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	if !pre.Joined {
		if pre.Err != nil {
			if errors.Is(pre.Err, unix.ESRCH) || errors.Is(pre.Err, unix.EINVAL) {
				return 0, fmt.Errorf("cannot join %s: %w (it ended)", what, pre.Err)
			}
			return 0, fmt.Errorf("cannot join %s: %w", what, pre.Err)
		}
		return 0, fmt.Errorf("cannot join %s: launch was built without its constructor (cgo)", what)
	}
	if len(args) < 3 {
		return 0, errors.New("joining an instance: missing arguments (run launch exec instance://NAME, not this directly)")
	}
	cfd, err := strconv.Atoi(args[2])
	if err != nil || cfd < 3 {
		return 0, fmt.Errorf("joining %s: bad config descriptor %q", what, args[2])
	}
	f := os.NewFile(uintptr(cfd), "launch-join")
	data, err := io.ReadAll(io.LimitReader(f, maxJoinConfig+1))
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("joining %s: reading the payload's config: %w", what, err)
	}
	if len(data) > maxJoinConfig {
		return 0, fmt.Errorf("joining %s: the payload's config is larger than %d bytes", what, maxJoinConfig)
	}
	cfg := &Config{}
	if err := json.Unmarshal(data, cfg); err != nil {
		return 0, fmt.Errorf("joining %s: decoding the payload's config: %w", what, err)
	}
	if shared {
		return superviseJoinStage(cfg, what)
	}
	return runJoined(cfg, what, pre.Parent, false)
}

// runJoined runs cfg's payload in this process's namespaces (an instance's
// or, shared, those of a --sharens holder) and returns its exit status.
// parent, when not nil, reads end-of-file once the launcher that waits for
// this process is gone: the payload is killed then. shared: no PID
// namespace holds the payload's leftovers, so this process, a child
// subreaper, kills them when it returns; its privileges are already dropped
// (by the launcher before it started this process).
func runJoined(cfg *Config, what string, parent *os.File, shared bool) (int, error) {
	log := msg.Stderr(msg.Level(cfg.LogLevel))
	if shared {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("becoming child subreaper: %w", err)
		}
		proc, err := os.Open("/proc")
		if err != nil {
			return 0, fmt.Errorf("opening /proc: %w", err)
		}
		defer killLeftovers(proc)
	}
	if err := enterWorkdir(cfg, log); err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 32)
	notify(sigs, keepIgnored())
	rp := reap.New()
	// With a PID namespace the constructor waits outside it, and a
	// --sharens join's launcher waits for this process: the death
	// (SIGKILL) of either ends the payload too.
	gone := make(chan struct{})
	if parent != nil {
		go watchLauncher(parent, gone)
	}
	argv0, argv, env, err := payloadCommand(cfg, readEnvScripts(), log)
	if errors.Is(err, errNoTest) { // `launch test` of an instance without one: said, status 0
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	log.Debugf("joined %s; running %q", what, argv)
	if !shared {
		if err := dropPrivileges(cfg.Fakeroot != nil); err != nil {
			return 0, err
		}
	}
	wd, _ := os.Getwd()
	pid, err := rp.ForkExec(argv0, argv, &syscall.ProcAttr{
		Dir:   wd,
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		if errors.Is(err, syscall.ENOMEM) {
			return 0, fmt.Errorf("starting %s in %s: %w (the instance is ending)", argv0, what, err)
		}
		return 0, fmt.Errorf("starting %s in %s: %w", argv0, what, err)
	}
	for {
		select {
		case s := <-sigs:
			if fromTerminal(s) {
				continue
			}
			_ = syscall.Kill(pid, s.(syscall.Signal))
		case ev := <-rp.Exits():
			if ev.Pid == pid {
				return reap.Status(ev.Status), nil
			}
		case <-gone:
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return reap.Signalled(syscall.SIGKILL), nil
		}
	}
}

// killLeftovers kills every process below this one (a --sharens join's
// payload's leftovers), repeatedly, until none is left.
func killLeftovers(proc *os.File) {
	for i := 0; i < 100; i++ {
		pids := reap.Descendants(proc, os.Getpid())
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// JoinStageArg is the hidden first argument of a --sharens join's stage:
// `launch __launch_join_stage WHAT`, started by the joined launch (in the
// holder's namespaces, which it inherits) with its Config on descriptor 3
// (stagePipeFD), which then reads end-of-file once that launch is gone.
const JoinStageArg = "__launch_join_stage"

// superviseJoinStage runs a --sharens join's payload through a stage of its
// own (JoinStageMain) and waits for it, passing signals on. No PID
// namespace ends what the payload leaves behind when this launch is
// SIGKILLed: the stage, a child subreaper that outlives this process, kills
// it then (it hears of the death on its pipe). This process is a child
// subreaper too, and kills whatever the stage left when it ends (the stage
// SIGKILLed). Privileges are dropped here, before the stage is started: a
// process without capabilities cannot drop them from its bounding set.
func superviseJoinStage(cfg *Config, what string) (int, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("becoming child subreaper: %w", err)
	}
	proc, err := os.Open("/proc")
	if err != nil {
		return 0, fmt.Errorf("opening /proc: %w", err)
	}
	defer killLeftovers(proc)
	data, err := json.Marshal(cfg)
	if err != nil {
		return 0, fmt.Errorf("joining %s: encoding the payload's config: %w", what, err)
	}
	if err := dropPrivileges(false); err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("joining %s: creating the stage's pipe: %w", what, err)
	}
	defer pw.Close()
	sigs := make(chan os.Signal, 16)
	notify(sigs, keepIgnored())
	pid, err := syscall.ForkExec("/proc/self/exe", []string{os.Args[0], JoinStageArg, what}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2, pr.Fd()},
	})
	pr.Close()
	if err != nil {
		return 0, fmt.Errorf("joining %s: starting its stage: %w", what, err)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
	if _, err := pw.Write(append(hdr[:], data...)); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_, _ = reapStage(pid)
		return 0, fmt.Errorf("joining %s: sending the config to its stage: %w", what, err)
	}
	exited := make(chan struct{})
	go func() {
		waitExited(pid) // unreaped: a signal never reaches a recycled pid
		close(exited)
	}()
	for {
		select {
		case s := <-sigs:
			if fromTerminal(s) {
				continue // the terminal already sent it to the whole process group
			}
			_ = syscall.Kill(pid, s.(syscall.Signal))
		case <-exited:
			ws, err := reapStage(pid)
			if err != nil {
				return 0, fmt.Errorf("joining %s: waiting for its stage: %w", what, err)
			}
			return reap.Status(ws), nil
		}
	}
}

// JoinStageMain is a --sharens join's stage (JoinStageArg's command line;
// args are those after it): it runs the payload of the Config read from
// stagePipeFD and returns its exit status, killing it and what it left
// once the launcher that started it is gone.
func JoinStageMain(args []string) int {
	runtime.LockOSThread() // the payload's parent-death signal
	what := "the shared namespaces"
	if len(args) > 0 {
		what = args[0]
	}
	pipe := os.NewFile(stagePipeFD, "join-stage-pipe")
	syscall.CloseOnExec(stagePipeFD)
	cfg, err := readConfig(pipe)
	if err == nil {
		var code int
		if code, err = runJoined(cfg, what, pipe, true); err == nil {
			return code
		}
	}
	msg.Fatal(os.Stderr, err)
	return 255
}
