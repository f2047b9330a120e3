package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/progress"
)

// ociFlags are the options of pull and build for OCI sources.
type ociFlags struct {
	arch                   string
	noHTTPS, disableCache  bool
	dockerUser, dockerPass string
}

func (f *ociFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.arch, "arch", "", "architecture to pull from a multi-platform image (amd64, arm64, arm/v7 …; default: this machine's)")
	fl.BoolVar(&f.noHTTPS, "nohttps", false, "talk plain HTTP to the registry (a local test registry)")
	fl.BoolVar(&f.noHTTPS, "no-https", false, "same as --nohttps")
	fl.BoolVar(&f.disableCache, "disable-cache", false, "neither use nor fill the cache ($LAUNCH_DISABLE_CACHE)")
	fl.StringVar(&f.dockerUser, "docker-username", "", "registry user name ($LAUNCH_DOCKER_USERNAME; default: ~/.docker/config.json)")
	fl.StringVar(&f.dockerPass, "docker-password", "", "registry password or token ($LAUNCH_DOCKER_PASSWORD)")
	_ = fl.MarkHidden("no-https")
}

// ociOptions turns the flags and LAUNCH_* variables into build options.
func (f *ociFlags) ociOptions(g *globals, out string, force bool) (build.OCIOptions, error) {
	user, pass := f.dockerUser, f.dockerPass
	if user == "" {
		user = os.Getenv("LAUNCH_DOCKER_USERNAME")
	}
	if pass == "" {
		pass = os.Getenv("LAUNCH_DOCKER_PASSWORD")
	}
	if pass != "" && user == "" {
		return build.OCIOptions{}, fmt.Errorf("a registry password was given without a user name (--docker-username or LAUNCH_DOCKER_USERNAME)")
	}
	conf, err := loadConfig()
	if err != nil {
		return build.OCIOptions{}, err
	}
	o := build.OCIOptions{
		Options: build.Options{Out: out, Force: force, Log: g.Log(),
			Mksquashfs: conf.Tools.Mksquashfs, Unsquashfs: conf.Tools.Unsquashfs},
		Fetch: oci.Options{Arch: f.arch, Username: user, Password: pass, Insecure: f.noHTTPS},
	}
	if g.verbose || g.debug {
		o.ToolOutput = g.stderr
	}
	tty := g.stderr == os.Stderr && progress.IsTerminal(os.Stderr)
	o.Progress = progress.New(g.stderr, tty, g.quiet)
	if f.disableCache || envTrue("LAUNCH_DISABLE_CACHE") {
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

func envTrue(k string) bool {
	switch os.Getenv(k) {
	case "1", "true", "yes", "TRUE", "True", "YES":
		return true
	}
	return false
}

func newPullCmd(g *globals) *cobra.Command {
	var f ociFlags
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
/.singularity.d/env/10-docker2singularity.sh, the runscript and labels.json,
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
					c.CommandPath(), len(args), plural(len(args)), c.CommandPath())
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
			o, err := f.ociOptions(g, out, force)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return build.FromOCI(ctx, src, o)
		},
	}
	c.Flags().BoolVarP(&force, "force", "F", false, "replace OUT if it exists")
	f.register(c)
	return c
}
