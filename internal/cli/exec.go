package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/mountplan"
)

// runFlags are the options shared by exec, run and shell.
type runFlags struct {
	pid, ipc, net, uts bool
	hostname           string
	noHome             bool
	noMount            []string
	shell              string
}

func (f *runFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.SetInterspersed(false) // everything after the image belongs to the payload
	fl.BoolVarP(&f.pid, "pid", "p", false, "run in a new PID namespace (fresh /proc)")
	fl.BoolVarP(&f.ipc, "ipc", "i", false, "run in a new IPC namespace")
	fl.BoolVarP(&f.net, "net", "n", false, "run in a new network namespace (loopback only)")
	fl.BoolVar(&f.uts, "uts", false, "run in a new UTS namespace")
	fl.StringVar(&f.hostname, "hostname", "", "set the container's hostname (implies --uts)")
	fl.BoolVar(&f.noHome, "no-home", false, "do not mount the home directory")
	fl.StringSliceVar(&f.noMount, "no-mount", nil, "leave out default mounts (comma list of "+
		strings.Join(mountplan.DefaultNames(), ",")+")")
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
		Args: minArgs(2, "an image and a command"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, container.ModeExec, args[0], args[1:])
		},
	}
	f.register(c)
	return c
}

func newRunCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [ARG...]",
		Short: "Run the image's runscript",
		Long: `Run the runscript of IMAGE (/.singularity.d/runscript) with ARGs, as
Apptainer does.`,
		Example: `  launch run app.sif --help
  launch run --pid app.sif`,
		Args: minArgs(1, "an image"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, container.ModeRun, args[0], args[1:])
		},
	}
	f.register(c)
	return c
}

func newShellCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "shell [flags] IMAGE",
		Short: "Start an interactive shell inside an image",
		Long: `Start an interactive shell in IMAGE: --shell, else $LAUNCH_SHELL, else
/bin/bash when the image has it, else /bin/sh.`,
		Example: `  launch shell app.sif
  launch shell --shell /bin/zsh app.sif`,
		Args: minArgs(1, "an image"),
		RunE: func(c *cobra.Command, args []string) error {
			if f.shell == "" {
				f.shell = os.Getenv("LAUNCH_SHELL")
			}
			return runContainer(g, f, container.ModeShell, args[0], args[1:])
		},
	}
	f.register(c)
	c.Flags().StringVarP(&f.shell, "shell", "s", "", "path of the shell to run inside the image")
	return c
}

// runContainer resolves the image and the plan, then hands over to the
// container package and returns the payload's exit status as an ExitError.
func runContainer(g *globals, f *runFlags, mode container.Mode, imagePath string, args []string) error {
	img, err := image.Open(imagePath)
	if err != nil {
		return err
	}
	if err := img.CheckArch(); err != nil {
		return err
	}
	user := container.CurrentUser()
	cwd, _ := os.Getwd()
	disabled := map[string]bool{}
	for _, n := range f.noMount {
		disabled[strings.TrimSpace(n)] = true
	}
	if f.noHome {
		disabled["home"] = true
	}
	plan, err := mountplan.Build(mountplan.Spec{Home: user.Home, Cwd: cwd, PIDNamespace: f.pid, Disabled: disabled})
	if err != nil {
		return err
	}
	log := g.Log()
	if log.Level() >= 2 {
		for _, op := range plan.Ops {
			log.Debugf("plan: %s", op)
		}
	}
	cfg := &container.Config{
		Image:      *img,
		Plan:       plan,
		User:       user,
		Cwd:        cwd,
		Env:        hostEnv(os.Environ()),
		Mode:       mode,
		Args:       args,
		Shell:      f.shell,
		Namespaces: container.Namespaces{PID: f.pid, IPC: f.ipc, Net: f.net, UTS: f.uts, Hostname: f.hostname},
		Squashfuse: []string{"squashfuse_ll", "squashfuse", "/usr/bin/squashfuse_ll", "/usr/bin/squashfuse",
			"/usr/local/bin/squashfuse_ll", "/usr/local/bin/squashfuse"},
		LogLevel: int(log.Level()),
	}
	log.Verbosef("running %s image %s as %s (uid %d, gid %d)", img.Format, img.Path, user.Name, user.UID, user.GID)
	code, err := container.Run(cfg)
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// hostEnv is the host environment the container inherits: everything but
// the variables the image must own.
func hostEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "LD_LIBRARY_PATH", "PS1", "PROMPT_COMMAND":
			continue
		}
		out = append(out, kv)
	}
	return out
}
