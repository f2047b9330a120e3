package cli

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/mountplan"
	"github.com/launch-hpc/launch/internal/runspec"
)

// runFlags are the options shared by exec, run and shell.
type runFlags struct {
	pid, ipc, net, uts bool
	hostname           string
	noHome             bool
	noMount            []string
	shell              string
	binds              []string
	mounts             []string
	home               string
	pwd                string
	cleanenv           bool
	envs               []string
	envFiles           []string
	contain            bool
	containAll         bool
	writableTmpfs      bool
	writable           bool
	overlays           []string
	scratch            []string
	workdir            string
	noShare            bool
	linger             string
	fakeroot           bool
	gpu                gpuFlags
	app                string
	noHTTPS            bool // for a docker:// IMAGE (source.go)
	registry           registryFlags
	network            string // --network: "none" alone (checked in spec)
	instanceInit       string // hidden; instance.go
	sharens            bool   // instance.go
}

func (f *runFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.SetInterspersed(false) // everything after the image belongs to the payload
	fl.SetNormalizeFunc(flagAliases)
	fl.StringArrayVarP(&f.binds, "bind", "B", nil, "bind SRC[:DST[:ro|rw]] into the container (comma list, repeatable; also LAUNCH_BIND)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "bind with explicit fields: type=bind,src=SRC,dst=DST[,ro] (repeatable)")
	fl.StringVarP(&f.home, "home", "H", "", "home directory SRC[:DST] to bind instead of $HOME")
	fl.BoolVar(&f.noHome, "no-home", false, "do not mount the home directory")
	fl.StringSliceVar(&f.noMount, "no-mount", nil, "leave out default mounts (comma list of "+mountplan.NoMountHelp()+")")
	fl.StringVar(&f.pwd, "pwd", "", "initial working directory inside the container (also --cwd, as Apptainer spells it)")
	fl.BoolVarP(&f.cleanenv, "cleanenv", "e", false, "pass only a minimal host environment (HOME, TERM, proxies, SLURM_*, …; LANG=C)")
	fl.StringArrayVar(&f.envs, "env", nil, "set NAME=VALUE inside (comma list, repeatable; wins over everything)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "set the NAME=VALUE lines of a file inside (repeatable)")
	fl.BoolVarP(&f.contain, "contain", "c", false, "minimal /dev, private /tmp and /var/tmp, empty home, no working directory bind")
	fl.BoolVarP(&f.containAll, "containall", "C", false, "--contain plus --cleanenv, --pid and --ipc")
	fl.BoolVarP(&f.pid, "pid", "p", false, "run in a new PID namespace (fresh /proc)")
	fl.BoolVarP(&f.ipc, "ipc", "i", false, "run in a new IPC namespace")
	fl.BoolVarP(&f.net, "net", "n", false, "run in a new network namespace (loopback only)")
	fl.StringVar(&f.network, "network", "", "with --net, the network: none (loopback only) is launch's one; no CNI networks")
	fl.BoolVar(&f.uts, "uts", false, "run in a new UTS namespace")
	fl.StringVar(&f.hostname, "hostname", "", "set the container's hostname (implies --uts)")
	fl.BoolVar(&f.writableTmpfs, "writable-tmpfs", false, "writable layer in memory over the image for this run (size: launch.conf tmpfs.writable)")
	fl.StringArrayVarP(&f.overlays, "overlay", "o", nil, "overlay directory DIR[:ro] over the image: writes kept in DIR (repeatable; :ro stacks below)")
	fl.StringSliceVarP(&f.scratch, "scratch", "S", nil, "empty writable directory at this path inside (comma list, repeatable)")
	fl.StringVarP(&f.workdir, "workdir", "W", "", "host directory backing --scratch and, with --contain, /tmp and /var/tmp")
	fl.BoolVarP(&f.writable, "writable", "w", false, "write into a sandbox (directory) image itself")
	fl.BoolVarP(&f.fakeroot, "fakeroot", "f", false, "run as uid 0 inside, in a user namespace mapped onto your ids and your /etc/subuid, /etc/subgid ranges")
	fl.BoolVar(&f.noShare, "no-share", false, "mount the image for this launch alone, not shared with this user's other launches of it in the same job step")
	f.gpu.register(c)
	fl.StringVar(&f.linger, "linger", "", "keep a shared image mount this launch serves warm this long after its last launch, for the next (default: launch.conf images.linger)")
	fl.BoolVar(&f.noHTTPS, "nohttps", false, "talk plain HTTP to the registry of a docker:// IMAGE (a local test registry)")
	f.registry.register(c)
	fl.BoolVar(&f.sharens, "sharens", false, "share one set of namespaces among this user's launches of the image in this job step (docs/instances.md)")
	registerAlready(c, "exec") // instance start and run too
}

// flagAliases maps Apptainer's other spellings of options to launch's:
// --cwd is Apptainer's documented name for --pwd, --no-https its other
// spelling of --nohttps.
func flagAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "cwd":
		return "pwd"
	case "no-https":
		return "nohttps"
	}
	return pflag.NormalizedName(name)
}

func newExecCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "exec [flags] IMAGE COMMAND [ARG...]",
		Short: "Run a command inside an image",
		Long: `Run COMMAND from IMAGE (a SIF, a SquashFS file or a directory) as the
calling user, with $HOME, the working directory and /tmp bound in.
The exit status is the command's own (128+N when it died of signal N);
255 means launch itself failed.`,
		Example: `  launch exec app.sif ./solver --input data.h5
  srun -n 64 launch exec app.sif /opt/app/bin/mpi_prog
  launch exec --pid app.sif ps aux`,
		Args: cliutil.MinArgs(2, "an image and a command"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, runspec.ModeExec, args[0], args[1:])
		},
	}
	f.register(c)
	registerApp(c, f)
	return c
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [ARG...]",
		Short: "Run the image's runscript",
		Long: `Run the runscript of IMAGE (` + layout.Runscript + `) with ARGs, as
Apptainer does.`,
		Example: `  launch run app.sif --help
  launch run --pid app.sif`,
		Args: cliutil.MinArgs(1, "an image"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, runspec.ModeRun, args[0], args[1:])
		},
	}
	f.register(c)
	registerApp(c, f)
	f.registerInstance(c)
	return c
}

func newShellCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "shell [flags] IMAGE",
		Short: "Start an interactive shell inside an image",
		Long: `Start an interactive shell in IMAGE: --shell, else $LAUNCH_SHELL (then
$APPTAINER_SHELL, $SINGULARITY_SHELL), else
/bin/bash when the image has it, else /bin/sh.`,
		Example: `  launch shell app.sif
  launch shell --shell /bin/zsh app.sif`,
		Args: cliutil.MinArgs(1, "an image"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, runspec.ModeShell, args[0], args[1:])
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.shell, "shell", "s", "", "path of the shell to run inside the image")
	registerApp(c, f)
	return c
}

// runContainer turns the flags into the run specification and hands it to
// the container package, which checks, prepares and runs the container; the payload's exit status comes back as an ExitError.
func runContainer(g *globals, f *runFlags, mode runspec.Mode, imagePath string, args []string) error {
	conf, err := g.siteConfig()
	if err != nil {
		return err
	}
	if imagePath, err = resolveImage(g, imagePath, f.noHTTPS, f.registry); err != nil {
		return err
	}
	cwd, _ := os.Getwd()
	spec, err := f.spec(&conf.Config, mode, imagePath, args, g.userEnv(), cwd)
	if err != nil {
		return err
	}
	spec.LogLevel = int(g.Log().Level())
	if err := f.instanceSpec(spec); err != nil {
		return err
	}
	code, err := container.Run(spec, g.pre)
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}
