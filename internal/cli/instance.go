package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/instance"
	"github.com/launch-hpc/launch/internal/jobenv"
	"github.com/launch-hpc/launch/internal/runspec"
	"github.com/launch-hpc/launch/internal/transport"
)

// instanceInitFlag is the hidden option of `launch run` with which
// `instance start|run` starts an instance's init (MODE:NAME, MODE start or
// run); its readiness handshake is on instance.ReadyFD.
const instanceInitFlag = "instance-init"

// registerInstance adds the hidden --instance-init option to c.
func (f *runFlags) registerInstance(c *cobra.Command) {
	c.Flags().StringVar(&f.instanceInit, instanceInitFlag, "", "")
	_ = c.Flags().MarkHidden(instanceInitFlag)
}

// instanceSpec sets --sharens, and makes s the Spec of an instance's init when --instance-init
// was given: it always has a PID namespace of its own, so that its end is
// the end of every process in it.
func (f *runFlags) instanceSpec(s *runspec.Spec) error {
	s.ShareNS = f.sharens
	if f.instanceInit == "" {
		return nil
	}
	parts := strings.Split(f.instanceInit, ":")
	bad := fmt.Errorf("--%s %q: not MODE:NAME[:JOBPID:JOBSTART]", instanceInitFlag, f.instanceInit)
	if (len(parts) != 2 && len(parts) != 4) || (parts[0] != "start" && parts[0] != "run") {
		return bad
	}
	if err := instance.CheckName(parts[1]); err != nil {
		return err
	}
	in := &runspec.Instance{Name: parts[1], Start: parts[0] == "start", ReadyFD: instance.ReadyFD}
	if len(parts) == 4 {
		pid, err1 := strconv.Atoi(parts[2])
		st, err2 := strconv.ParseUint(parts[3], 10, 64)
		if err1 != nil || err2 != nil || pid <= 0 {
			return bad
		}
		in.JobPid, in.JobStart = pid, st
	}
	s.Instance = in
	s.Namespaces.PID = true
	return nil
}

func newInstanceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "instance",
		Short: "Start, list and stop long-running containers (instances)",
		Long: `An instance is a container that runs in the background until it is
stopped: its startscript (or runscript, with 'instance run') runs, and
'launch exec|run|shell instance://NAME' run further programs inside it.
There is no daemon: an instance is your own process tree; inside a batch
job it ends with the job (see docs/instances.md).`,
	}
	cliutil.GroupOnly(c)
	c.AddCommand(newInstanceStartCmd(g, true), newInstanceStartCmd(g, false), newInstanceListCmd(g), newInstanceStopCmd(g))
	return c
}

func newInstanceStartCmd(g *globals, start bool) *cobra.Command {
	f := &runFlags{}
	var pidFile string
	verb, what := "start", "the image's startscript (or nothing, when it has none)"
	if !start {
		verb, what = "run", "the image's runscript"
	}
	c := &cobra.Command{
		Use:   verb + " [exec flags] IMAGE NAME [ARG...]",
		Short: "Start an instance of IMAGE named NAME, running " + what,
		Long: `Start IMAGE as the instance NAME in the background, running ` + what + `
with ARGs, and return once it is up. Its output goes to
~/.launch/instances/logs/HOST/NAME.out and .err. It has a PID namespace of
its own; the options are those of exec.`,
		Example: `  launch instance start -B /data db.sif db
  launch exec instance://db psql
  launch instance stop db`,
		Args: cliutil.MinArgs(2, "an image and an instance name"),
		RunE: func(c *cobra.Command, args []string) error {
			return startInstance(g, f, start, args, c.ArgsLenAtDash() >= 0, pidFile)
		},
	}
	f.register(c)
	c.Flags().StringVar(&pidFile, pidFileFlag, "", "write the instance's PID (its init's, on the host) to this file")
	return c
}

// pidFileFlag is instance start's --pid-file, which is not an exec option:
// it is kept off the init's command line (withoutPidFile).
const pidFileFlag = "pid-file"

// withoutPidFile is flags without --pid-file and its value.
func withoutPidFile(flags []string) []string {
	var out []string
	for i := 0; i < len(flags); i++ {
		switch a := flags[i]; {
		case a == "--"+pidFileFlag:
			i++ // and its value
		case strings.HasPrefix(a, "--"+pidFileFlag+"="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// startInstance starts the instance args[1] of image args[0]: a `launch
// run --instance-init` command line, with the flags as given, run
// detached by internal/instance. dash: the command line had a "--" among
// or before the positional arguments (pflag drops it from args).
func startInstance(g *globals, f *runFlags, start bool, args []string, dash bool, pidFile string) error {
	image, name, rest := args[0], args[1], args[2:]
	if err := instance.CheckName(name); err != nil {
		return err
	}
	if strings.HasPrefix(image, container.InstanceScheme) {
		return fmt.Errorf("%s: an instance cannot be started from another instance", image)
	}
	if v := jobenv.Unwatched(os.Getenv); v != "" { // only a Slurm job's end is watched (instance.JobAnchor)
		return fmt.Errorf("instance %s: not started inside this batch job (%s is set): launch cannot watch "+
			"that batch system's job end, and an instance must not outlive its job (see docs/instances.md)", name, v)
	}
	conf, err := g.siteConfig()
	if err != nil {
		return err
	}
	cwd, _ := os.Getwd()
	spec, err := f.spec(&conf.Config, runspec.ModeRun, image, rest, os.Environ(), cwd)
	if err != nil {
		return err
	}
	spec.Namespaces.PID = true
	container.MarkReadOnlyImages(spec, g.Log())
	if err := spec.Validate(); err != nil {
		return err
	}
	flags, err := rawFlags(g.args, args, dash)
	if err != nil {
		return err
	}
	flags = withoutPidFile(flags)
	var pf *os.File
	started := false
	if pidFile != "" { // made before the instance starts: a bad path starts nothing
		if _, err := os.Lstat(pidFile); errors.Is(err, os.ErrNotExist) {
			defer func() { // a file this start made, for an instance that did not start
				if !started {
					os.Remove(pidFile)
				}
			}()
		}
		// Not truncated until the instance runs: a start that fails
		// leaves an existing file as it was.
		if pf, err = os.OpenFile(pidFile, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644); err != nil {
			return fmt.Errorf("--pid-file: %w", err)
		}
		defer pf.Close()
		var st syscall.Stat_t
		if err := syscall.Fstat(int(pf.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return fmt.Errorf("--pid-file %s: not a regular file", pidFile)
		}
		if int(st.Uid) != os.Getuid() || st.Nlink != 1 {
			// Another's file (in /tmp, say) could be changed to name
			// another process by the time someone kills what it says.
			return fmt.Errorf("--pid-file %s: not a file of your own (owner uid %d, %d links)", pidFile, st.Uid, st.Nlink)
		}
	}
	mode := "start"
	if !start {
		mode = "run"
	}
	argv := []string{os.Args[0]}
	switch {
	case g.debug:
		argv = append(argv, "-d")
	case g.verbose:
		argv = append(argv, "-v")
	}
	init := mode + ":" + name
	if pid, st, ok := instance.JobAnchor(os.Getenv); ok {
		init += fmt.Sprintf(":%d:%d", pid, st)
	}
	argv = append(argv, "run", "--"+instanceInitFlag+"="+init)
	argv = append(argv, flags...)
	if dash { // what follows is the image and its arguments, whatever they look like
		argv = append(argv, "--")
	}
	argv = append(argv, image)
	argv = append(argv, rest...)
	home := userHome()
	store, err := instance.Open(os.Getuid(), home, os.Getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	abs := image // a local path is recorded absolute; a source (docker://…) as given
	if !transport.LooksLikeSource(image) {
		if a, err := filepath.Abs(image); err == nil {
			abs = a
		}
	}
	rec, err := store.Start(name, abs, argv, os.Environ(), home)
	if err != nil {
		return err
	}
	started = true
	if pf != nil {
		if err := pf.Truncate(0); err != nil {
			return fmt.Errorf("instance %s started (pid %d), but writing --pid-file %s: %w", name, rec.Pid, pidFile, err)
		}
		if _, err := fmt.Fprintf(pf, "%d\n", rec.Pid); err != nil {
			return fmt.Errorf("instance %s started (pid %d), but writing --pid-file %s: %w", name, rec.Pid, pidFile, err)
		}
	}
	g.Log().Infof("INFO:    instance %s started (pid %d); logs in %s", name, rec.Pid, filepath.Dir(rec.Out))
	return nil
}

// rawFlags is the part of the command line (all, without the program
// name) that held the options of `instance start|run`: what follows the
// subcommand, less the positional arguments cobra found (pos) and, with
// dash, the "--" that pflag dropped from them (the caller puts it back
// before the image).
func rawFlags(all, pos []string, dash bool) ([]string, error) {
	n := len(pos)
	if dash {
		n++
	}
	seen := 0
	for i, a := range all {
		if strings.HasPrefix(a, "-") {
			continue
		}
		seen++
		if seen == 2 { // instance, then start or run
			tail := all[i+1:]
			if len(tail) < n {
				break
			}
			return tail[:len(tail)-n], nil
		}
	}
	return nil, errors.New("instance start: cannot find the options on the command line")
}

// userHome is the calling user's home: $HOME when it is an absolute
// path, else the user database's.
func userHome() string {
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		return h
	}
	return container.CurrentUser().Home
}

func newInstanceListCmd(g *globals) *cobra.Command {
	var asJSON, logs bool
	c := &cobra.Command{
		Use:   "list [flags] [NAME...]",
		Short: "List your running instances on this host",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return listInstances(g, args, asJSON, logs)
		},
	}
	c.Flags().BoolVarP(&asJSON, "json", "j", false, "print as JSON")
	c.Flags().BoolVarP(&logs, "logs", "l", false, "show the log files instead of the image")
	return c
}

// listEntry is one instance in `instance list --json` (Apptainer's keys).
type listEntry struct {
	Instance string `json:"instance"`
	Pid      int    `json:"pid"`
	Image    string `json:"img"`
	IP       string `json:"ip"`
	LogOut   string `json:"logOutPath"`
	LogErr   string `json:"logErrPath"`
	Starting bool   `json:"starting,omitempty"`
}

func listInstances(g *globals, names []string, asJSON, logs bool) error {
	for _, n := range names {
		if err := checkNameOrPattern(n); err != nil {
			return err
		}
	}
	store, err := instance.Open(os.Getuid(), userHome(), os.Getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	live, bad, err := store.Live()
	if err != nil {
		return err
	}
	for _, e := range bad {
		g.Log().Warnf("%v", e)
	}
	out := []listEntry{}
	for _, e := range live {
		e.Proc.Close()
		if len(names) > 0 && !matchesAny(names, e.Name) {
			continue
		}
		out = append(out, listEntry{Instance: e.Name, Pid: e.Pid, Image: e.Image, LogOut: e.Out, LogErr: e.Err, Starting: e.Starting})
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "\t")
		return enc.Encode(map[string][]listEntry{"instances": out})
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 3, ' ', 0)
	if logs {
		fmt.Fprintln(w, "INSTANCE NAME\tPID\tLOGS")
	} else {
		fmt.Fprintln(w, "INSTANCE NAME\tPID\tIP\tIMAGE")
	}
	for _, e := range out {
		img := e.Image
		if e.Starting {
			img = "(starting)"
		}
		if logs {
			fmt.Fprintf(w, "%s\t%d\t%s\n\t\t%s\n", e.Instance, e.Pid, e.LogErr, e.LogOut)
		} else {
			fmt.Fprintf(w, "%s\t%d\t\t%s\n", e.Instance, e.Pid, img)
		}
	}
	return w.Flush()
}

// isPattern reports whether an instance name given to list or stop is a
// glob pattern (Apptainer's 'web*'), matched with path.Match.
func isPattern(n string) bool { return strings.ContainsAny(n, "*?[") }

// checkNameOrPattern checks a name given to list or stop: a valid
// instance name, or a well-formed pattern.
func checkNameOrPattern(n string) error {
	if !isPattern(n) {
		return instance.CheckName(n)
	}
	if _, err := path.Match(n, ""); err != nil {
		return fmt.Errorf("instance name pattern %q: %w", n, err)
	}
	return nil
}

// matchesAny reports whether name is one of names or matches one of the
// patterns among them.
func matchesAny(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
		if ok, _ := path.Match(n, name); ok && isPattern(n) {
			return true
		}
	}
	return false
}

func newInstanceStopCmd(g *globals) *cobra.Command {
	var sig string
	var timeout int
	var all, force bool
	c := &cobra.Command{
		Use:   "stop [flags] NAME...",
		Short: "Stop instances: a signal (SIGTERM), then SIGKILL after the timeout",
		Long: `Stop the named instances (or, with --all, every one of yours on this
host): send the signal, wait up to --timeout seconds for every process of
the instance to end, then kill what is left with SIGKILL.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if force {
				sig = "KILL"
			}
			return stopInstances(g, args, all, sig, timeout)
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "TERM", "signal to send first (name or number)")
	c.Flags().IntVarP(&timeout, "timeout", "t", 10, "seconds to wait before SIGKILL")
	c.Flags().BoolVarP(&all, "all", "a", false, "stop all your instances on this host")
	c.Flags().BoolVarP(&force, "force", "F", false, "send SIGKILL at once")
	return c
}

// parseSignal reads a signal name (TERM, SIGTERM, term) or number.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("--signal %s: no such signal", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("--signal %s: no such signal", s)
}

func stopInstances(g *globals, names []string, all bool, sigName string, timeout int) error {
	sig, err := parseSignal(sigName)
	if err != nil {
		return err
	}
	if timeout < 0 {
		return fmt.Errorf("--timeout %d: must be 0 or more seconds", timeout)
	}
	switch {
	case all && len(names) > 0:
		return errors.New("instance stop: give instance names or --all, not both")
	case !all && len(names) == 0:
		return errors.New("instance stop: give an instance name (or --all)")
	}
	patterns := false
	for _, n := range names {
		if err := checkNameOrPattern(n); err != nil {
			return err
		}
		patterns = patterns || isPattern(n)
	}
	store, err := instance.Open(os.Getuid(), userHome(), os.Getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	if all || patterns {
		live, _, err := store.Live()
		if err != nil {
			return err
		}
		var expanded []string
		for _, n := range names {
			if !isPattern(n) {
				expanded = append(expanded, n)
			}
		}
		for _, p := range names {
			if !isPattern(p) {
				continue
			}
			found := false
			for _, e := range live {
				if ok, _ := path.Match(p, e.Name); ok && !e.Starting {
					found = true
					if !slices.Contains(expanded, e.Name) {
						expanded = append(expanded, e.Name)
					}
				}
			}
			if !found {
				for _, e := range live {
					e.Proc.Close()
				}
				return fmt.Errorf("no running instance matches %q (see launch instance list)", p)
			}
		}
		for _, e := range live {
			e.Proc.Close()
			if all && !e.Starting {
				expanded = append(expanded, e.Name)
			}
		}
		names = expanded
	}
	log := g.Log()
	for _, n := range names {
		rec, proc, err := store.Lookup(n)
		switch {
		case errors.Is(err, instance.ErrNotFound):
			return fmt.Errorf("no instance %s is running (see launch instance list)", n)
		case errors.Is(err, instance.ErrGone):
			return fmt.Errorf("instance %s is no longer running (its stale record is removed)", n)
		case err != nil:
			return err
		}
		log.Verbosef("stopping instance %s of %s (pid %d) with %s", n, rec.Image, rec.Pid, unix.SignalName(sig))
		forced, err := store.Stop(n, proc, sig, time.Duration(timeout)*time.Second)
		proc.Close()
		if err != nil {
			return err
		}
		if forced {
			log.Warnf("instance %s did not end within %ds of %s: killed", n, timeout, unix.SignalName(sig))
		}
		log.Infof("INFO:    instance %s stopped", n)
	}
	return nil
}
