// Package ocicli holds the commands that need the OCI libraries (pull,
// cache, build from OCI sources). They are linked only into the launch-oci
// helper, which launch runs for them, so that the libraries' package
// initialisation (registry client, TLS, digest regexps) is not paid by every
// `launch exec` of every rank.
//
// It must not be imported by the launch binary's own packages (cli, container).
package ocicli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/ocibuild"
	"github.com/launch-hpc/launch/internal/progress"
)

// ociOptions turns the flags into build options for the source src. The
// flags already hold their LAUNCH_<OPTION> variables where the command line
// left them alone (LAUNCH_DOCKER_USERNAME, LAUNCH_DOCKER_PASSWORD,
// LAUNCH_DISABLE_CACHE: the root command's applyEnvFlags binds them). The
// cache is opened (and checked) only for a registry source, the only kind
// that uses it.
func ociOptions(g cliutil.Globals, f *cliutil.OCIFlags, src oci.Source, out string, force bool) (ocibuild.OCIOptions, error) {
	user, pass := f.DockerUser, f.DockerPass
	if pass != "" && user == "" {
		return ocibuild.OCIOptions{}, fmt.Errorf("a registry password was given without a user name (--docker-username or LAUNCH_DOCKER_USERNAME)")
	}
	conf, err := config.LoadSite()
	if err != nil {
		return ocibuild.OCIOptions{}, err
	}
	comp, err := f.CompressionFor(&conf.Config)
	if err != nil {
		return ocibuild.OCIOptions{}, err
	}
	o := ocibuild.OCIOptions{
		Options: build.Options{Out: out, Force: force, Log: g.Log(), Compression: comp,
			Mksquashfs: conf.Tools.Mksquashfs, Unsquashfs: conf.Tools.Unsquashfs, Tar2sqfs: conf.Tools.Tar2sqfs},
		Fetch:       oci.Options{Arch: f.Arch, Username: user, Password: pass, Insecure: f.NoHTTPS},
		MaxUnpacked: conf.Build.MaxUnpackedBytes(),
	}
	if g.Verbose() {
		o.ToolOutput = g.Stderr()
	}
	tty := g.Stderr() == os.Stderr && progress.IsTerminal(os.Stderr)
	o.Progress = progress.New(g.Stderr(), tty, g.Quiet())
	if f.DisableCache || src.Transport != oci.Docker {
		return o, nil
	}
	dir, err := cache.DefaultDir()
	if err != nil {
		return o, err
	}
	c, err := cache.Open(dir)
	if err != nil {
		return o, err
	}
	c.Waiting = func(what string) { o.Progress.Step("Waiting for another launch process to finish %s", what) }
	c.Warn = o.Log.Warnf
	o.Cache = c
	return o, nil
}

// NewPullCmd is `launch pull`.
func NewPullCmd(g cliutil.Globals) *cobra.Command {
	var f cliutil.OCIFlags
	var force bool
	c := &cobra.Command{
		Use:   "pull [flags] [OUT.sif] SOURCE",
		Short: "Fetch an OCI/Docker image and convert it to a SIF file",
		Long: `pull fetches the image SOURCE and converts it into the SIF file OUT
(default: NAME_TAG.sif in the current directory, as Apptainer names it).
SOURCE is one of:
  docker://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]   a registry (TAG defaults to latest)
  oci:DIR[:TAG]                                        an OCI image layout directory
  oci-archive:FILE[:TAG]                               a tar of an OCI image layout
  docker-archive:FILE[:TAG]                            the output of docker save

The layers are applied in order into a private temporary directory
($LAUNCH_TMPDIR, else $TMPDIR), with whiteouts honoured and nothing written
outside it; the image's Env, Entrypoint/Cmd, WorkingDir and Labels become
` + layout.OCIEnv + `, the runscript and labels.json,
and the OCI configuration is kept in the SIF (launch inspect --json shows it).

Registry images go through the per-user cache ($LAUNCH_CACHEDIR, default
~/.launch/cache): blobs by digest and converted SIFs by manifest digest, safe
for many concurrent pulls. Credentials come from ~/.docker/config.json, or
--docker-username/--docker-password (LAUNCH_DOCKER_USERNAME/_PASSWORD).`,
		Example: `  launch pull docker://alpine:3.20
  launch pull app.sif docker://registry.example.org/group/app@sha256:…
  launch pull --nohttps img.sif docker://127.0.0.1:5000/test/busybox:latest
  launch pull img.sif oci-archive:./image.tar`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%s needs SOURCE, or OUT.sif and SOURCE (got %d argument%s; see '%s --help')",
					c.CommandPath(), len(args), cliutil.Plural(len(args)), c.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			srcArg, out := args[len(args)-1], ""
			if len(args) == 2 {
				out = args[0]
			}
			src, err := oci.ParseSource(srcArg)
			if err != nil {
				return err
			}
			if out == "" {
				out = src.Name() + ".sif"
			}
			o, err := ociOptions(g, &f, src, out, force)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return ocibuild.FromOCI(ctx, src, o)
		},
	}
	c.Flags().BoolVarP(&force, "force", "F", false, "replace OUT if it exists")
	f.Register(c)
	return c
}

// BuildOCI is `launch build OUT SOURCE` for an OCI source.
func BuildOCI(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, force bool, out, source string) error {
	src, err := oci.ParseSource(source)
	if err != nil {
		return err
	}
	o, err := ociOptions(g, f, src, out, force)
	if err != nil {
		return err
	}
	return ocibuild.FromOCI(ctx, src, o)
}
