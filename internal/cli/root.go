// Package cli is the user-facing command line: one file per command, each a
// thin layer that turns flags into plain data and calls the packages that do
// the work. It prints launcher errors as one FATAL line and maps them to exit
// status 255; it never mounts, builds or parses images itself.
//
// For exec, run and shell it turns the flags, the LAUNCH_* variables and
// launch.conf into a run specification (internal/runspec), has it checked
// (Spec.Validate) and hands it to container.Run; it touches nothing on the
// host for them (no image, no passwd, no bind source, no directory). What
// it shares with launch-oci's commands is in internal/cliutil.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
)

// ExitLauncherError is the exit status for errors of the launcher itself
// (bad flags, missing image), as opposed to the payload's own status.
const ExitLauncherError = 255

// ExitError carries an exit status that is not a launcher error, such as the
// payload's own status from exec/run/shell. It prints nothing.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// globals are the flags every command shares, and what the commands need
// from the run: the writers, the original arguments (for the helper) and
// the OCI commands in use. It is the cliutil.Globals of the OCI commands.
type globals struct {
	quiet, verbose, debug bool
	silent                bool // Apptainer's -s/--silent: --quiet
	stdout, stderr        io.Writer
	args                  []string
	oci                   OCICommands
	pre                   preinit.Result
	site                  *config.Loaded // launch.conf, once read (siteConfig)
	hostEnv               []string       // the environment before applyEnv changed it (userEnv)
}

// siteConfig reads launch.conf the first time and returns it after.
func (g *globals) siteConfig() (*config.Loaded, error) {
	if g.site == nil {
		l, err := config.LoadSite()
		if err != nil {
			return nil, err
		}
		g.site = l
	}
	return g.site, nil
}

// applyEnv sets c's options from their variables (applyEnvFlags), exports
// the Apptainer directory variables as their LAUNCH_ names, and reports the
// Apptainer variables that have no effect: a warning each, or a debug line
// where launch already behaves as asked. The site config is read only when
// an APPTAINER_ or SINGULARITY_ variable is set. Forwarders to launch-oci
// (which parse no flags) leave it all to the helper.
func (g *globals) applyEnv(c *cobra.Command) error {
	if c.DisableFlagParsing {
		return nil
	}
	compat := false
	if hasCompatVar(os.Environ()) {
		l, err := g.siteConfig()
		if err != nil {
			return err
		}
		compat = l.Env.Apptainer
	}
	got, err := applyEnvFlags(c, os.Getenv, compat)
	if err != nil {
		return err
	}
	g.quiet = g.quiet || g.silent // from the command line or a variable
	if len(got.dirs) > 0 && g.hostEnv == nil {
		g.hostEnv = os.Environ()
	}
	for _, d := range got.dirs {
		if err := os.Setenv(d[0], d[1]); err != nil {
			return fmt.Errorf("setting %s: %w", d[0], err)
		}
	}
	log := g.Log()
	for _, v := range got.ignored {
		if v.quiet {
			log.Debugf("%s ignored: launch has no --%s and already behaves so", v.name, v.flag)
		} else {
			log.Warnf("%s is set, but launch %s has no --%s: ignored (see docs/apptainer-compat.md)", v.name, c.Name(), v.flag)
		}
	}
	return nil
}

// Stdout is where commands print their results.
func (g *globals) Stdout() io.Writer { return g.stdout }

// Stderr is where messages go.
func (g *globals) Stderr() io.Writer { return g.stderr }

// Quiet reports -q.
func (g *globals) Quiet() bool { return g.quiet }

// Verbose reports -v or -d.
func (g *globals) Verbose() bool { return g.verbose || g.debug }

// Args is the command line without the program name.
func (g *globals) Args() []string { return g.args }

// Log returns the logger for the level chosen on the command line.
func (g *globals) Log() *msg.Logger {
	switch {
	case g.debug:
		return msg.New(g.stderr, msg.Debug)
	case g.verbose:
		return msg.New(g.stderr, msg.Verbose)
	case g.quiet:
		return msg.New(g.stderr, msg.Quiet)
	}
	return msg.New(g.stderr, msg.Normal)
}

// Main runs the command line with args (without the program name) and
// returns the process exit status. The OCI commands are handed to the
// launch-oci helper. pre says what was done before the Go runtime started
// (internal/preinit).
func Main(args []string, pre preinit.Result) int {
	return run(&globals{stdout: os.Stdout, stderr: os.Stderr, args: args, oci: forwarders(), pre: pre})
}

// MainWith is Main with the given OCI commands (launch-oci passes the real
// ones), and nothing done before the Go runtime started.
func MainWith(args []string, oci OCICommands) int {
	return run(&globals{stdout: os.Stdout, stderr: os.Stderr, args: args, oci: oci})
}

// run executes the command line of g and returns the exit status.
func run(g *globals) int {
	root := newRoot(g, commandName(g.args))
	root.SetArgs(inspectArgs(globalArgs(g.args)))
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	msg.Fatal(g.stderr, blameEnvFlags(cmd, err))
	return ExitLauncherError
}

// globalShort are Apptainer's one-letter global options that launch
// spells out only before the command: after it, the command's own
// options of that letter win (build -s is --sandbox).
var globalShort = map[string]string{"-s": "--silent"}

// globalArgs is args with the global options before the command spelt
// out (globalShort).
func globalArgs(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		if long, ok := globalShort[a]; ok {
			if out == nil {
				out = append([]string(nil), args...)
			}
			out[i] = long
		}
	}
	if out == nil {
		return args
	}
	return out
}

// command is one subcommand of launch: its name, its aliases, and how to
// make it.
type command struct {
	names []string
	make  func(g *globals) *cobra.Command
}

// commands lists the subcommands of launch. The name of each must be the
// first word of its Use (TestCommandTable checks).
func commands(g *globals) []command {
	return append([]command{
		{[]string{"version"}, newVersionCmd},
		{[]string{"build"}, newBuildCmd},
		{[]string{"pull"}, func(g *globals) *cobra.Command { return withAlready(g.oci.Pull(g)) }},
		{[]string{"cache"}, func(g *globals) *cobra.Command { return g.oci.Cache(g) }},
		{[]string{"push"}, func(g *globals) *cobra.Command { return g.oci.Push(g) }},
		{[]string{"registry"}, func(g *globals) *cobra.Command { return g.oci.Registry(g) }},
		{[]string{"inspect"}, newInspectCmd},
		{[]string{"sif"}, newSifCmd},
		{[]string{"overlay"}, newOverlayCmd},
		{[]string{"exec"}, newExecCmd},
		{[]string{"run"}, newRunCmd},
		{[]string{"shell"}, newShellCmd},
		{[]string{"test"}, newTestCmd},
		{[]string{"run-help"}, newRunHelpCmd},
		{[]string{"instance"}, newInstanceCmd},
		{[]string{"config"}, newConfigCmd},
	}, signCommands()...)
}

// commandName is the subcommand that args name: the first argument that is
// not a flag. Every flag of the root command is a boolean, so no argument
// before the subcommand can be a flag's value (TestRootFlagsAreBool
// checks). "" when there is none, or "--" comes first.
func commandName(args []string) string {
	for _, a := range args {
		if a == "--" {
			return ""
		}
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// newRoot makes the command tree. When only names one of the subcommands,
// the tree holds that one alone: every `launch exec` would otherwise build
// the flag sets of every command, for nothing (each string-slice flag
// allocates a fresh 4 KiB buffer to print its default), and these
// allocations are page faults at process start. Any other only (help,
// completion, a misspelt command, none) builds the whole tree, so that
// help, suggestions and completion see every command.
func newRoot(g *globals, only string) *cobra.Command {
	root := &cobra.Command{
		Use:   "launch",
		Short: "Run programs from SIF container images, rootless and daemonless",
		Long: `launch runs a program from a single-file container image (SIF) as the
calling user, with no root, no daemon and no setuid helper of its own.
Its commands and flags follow Apptainer/SingularityCE; environment
variables use LAUNCH_ where Apptainer uses APPTAINER_, and Apptainer's
APPTAINER_ and SINGULARITY_ variables are honoured below them (launch.conf
env.apptainer_compat).`,
		Example: `  launch exec app.sif ./solver --input data.h5
  launch shell app.sif
  launch build app.sif ./rootfs/
  launch inspect app.sif`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			if err := g.applyEnv(c); err != nil {
				return err
			}
			g.reportAlready(c)
			return nil
		},
	}
	// --version prints what `launch version` prints (Apptainer has both).
	// Not cobra's Version field: its version template would link
	// text/template into every launch (about 1 MB of code and a larger
	// start), where cobra's own help needs none.
	var showVersion bool
	root.Flags().BoolVar(&showVersion, "version", false, "print the version of launch")
	root.RunE = func(c *cobra.Command, _ []string) error {
		if showVersion {
			fmt.Fprint(g.stdout, versionLine())
			return nil
		}
		return c.Help()
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print what the launcher does")
	pf.BoolVarP(&g.debug, "debug", "d", false, "print everything, including every mount")
	// Apptainer's -s is --silent before the command only (globalArgs):
	// build and pull have their own -s, --sandbox.
	pf.BoolVar(&g.silent, "silent", false, "print only errors, as --quiet (-s before the command)")
	registerAlready(root, "")
	cmds := commands(g)
	for _, c := range cmds {
		if slices.Contains(c.names, only) {
			root.AddCommand(c.make(g))
			// cobra would otherwise build its completion command
			// (and its four subcommands) in Execute.
			root.CompletionOptions.DisableDefaultCmd = true
			return root
		}
	}
	for _, c := range cmds {
		root.AddCommand(c.make(g))
	}
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(newHelpCmd(g))
	return root
}

// withAlready is c with the options registerAlready adds.
func withAlready(c *cobra.Command) *cobra.Command {
	registerAlready(c, c.Name())
	return c
}

// CommandTree is the whole command tree of launch with the given OCI
// commands, for generating manual pages and completion scripts
// (tools/gendocs). Its commands write to the standard streams.
func CommandTree(oci OCICommands) *cobra.Command {
	return newRoot(&globals{stdout: os.Stdout, stderr: os.Stderr, oci: oci}, "")
}
