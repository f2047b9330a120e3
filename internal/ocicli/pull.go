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
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/ocibuild"
	"github.com/launch-hpc/launch/internal/oras"
	"github.com/launch-hpc/launch/internal/progress"
	"github.com/launch-hpc/launch/internal/transport"
)

// ociOptions turns the flags into build options for the source src. The
// flags already hold their LAUNCH_<OPTION> variables where the command line
// left them alone (LAUNCH_DOCKER_USERNAME, LAUNCH_DOCKER_PASSWORD,
// LAUNCH_DISABLE_CACHE: the root command's applyEnvFlags binds them). The
// cache is opened (and checked) only for a registry source, the only kind
// that uses it.
func ociOptions(g cliutil.Globals, f *cliutil.OCIFlags, src oci.Source, out string, force bool) (ocibuild.OCIOptions, error) {
	var cr creds
	if src.Transport == oci.Docker {
		var err error
		if cr, err = credentials(f, src.String()); err != nil {
			return ocibuild.OCIOptions{}, err
		}
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
		Fetch:       oci.Options{Arch: f.Arch, Username: cr.user, Password: cr.pass, Insecure: f.NoHTTPS, Stored: cr.stored},
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
	var force, sandbox bool
	var dir, name string
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
  oras://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]     a SIF file stored in a registry
                                                       (launch push, apptainer push)
  https://HOST/PATH/IMAGE.sif, http://…                a SIF file on a web server (OUT
                                                       defaults to the URL's last part)

With --sandbox, OUT is a directory: the image is unpacked into it, with
set-uid/set-gid bits cleared and device nodes left out (see build --help).

The layers are applied in order into a private temporary directory
($LAUNCH_TMPDIR, else $TMPDIR), with whiteouts honoured and nothing written
outside it; the image's Env, Entrypoint/Cmd, WorkingDir and Labels become
` + layout.OCIEnv + `, the runscript and labels.json,
and the OCI configuration is kept in the SIF (launch inspect --json shows it).

Registry images go through the per-user cache ($LAUNCH_CACHEDIR, default
~/.launch/cache): blobs by digest and converted SIFs by manifest digest, safe
for many concurrent pulls (an oras:// SIF is cached as a blob, by digest).
Credentials come from --docker-username/--docker-password
(LAUNCH_DOCKER_USERNAME/_PASSWORD), --docker-login (asked on the terminal),
'launch registry login', or ~/.docker/config.json.`,
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
			f.Sandbox = sandbox
			// As Apptainer: --name wins over OUT, and --dir holds either
			// (or the default name).
			if name != "" {
				out = name
			}
			if dir != "" {
				if out == "" {
					var err error
					if out, err = defaultOut(srcArg, sandbox); err != nil {
						return err
					}
				}
				out = filepath.Join(dir, out)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return pullOrBuild(ctx, g, &f, force, out, srcArg)
		},
	}
	c.Flags().BoolVarP(&force, "force", "F", false, "replace OUT if it exists")
	c.Flags().BoolVarP(&sandbox, "sandbox", "s", false, "unpack the image into the directory OUT instead of a SIF file")
	c.Flags().StringVar(&dir, "dir", "", "write the image into directory DIR (OUT, --name or the default name inside it)")
	c.Flags().StringVar(&name, "name", "", "the image's file name, in place of OUT (Apptainer's hidden option, as Nextflow uses it)")
	_ = c.Flags().MarkHidden("name")
	f.Register(c)
	return c
}

// BuildOCI is `launch build OUT SOURCE` for an OCI or ORAS source (with
// f.Sandbox, into the directory OUT).
func BuildOCI(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, force bool, out, source string) error {
	return pullOrBuild(ctx, g, f, force, out, source)
}

// pullOrBuild makes out from source: a SIF file, or with f.Sandbox a
// directory. out "" is the name Apptainer gives it.
func pullOrBuild(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, force bool, out, source string) error {
	if out == "" {
		var err error
		if out, err = defaultOut(source, f.Sandbox); err != nil {
			return err
		}
	}
	if name, _, _ := transport.Split(source); name == transport.Oras {
		return orasPull(ctx, g, f, source, out, force)
	}
	if transport.IsWebFile(source) {
		return httpPull(ctx, g, f, source, out, force)
	}
	src, err := oci.ParseSource(source)
	if err != nil {
		return err
	}
	if f.Sandbox {
		return sandboxFromOCI(ctx, g, f, src, out, force)
	}
	o, err := ociOptions(g, f, src, out, force)
	if err != nil {
		return err
	}
	return ocibuild.FromOCI(ctx, src, o)
}

// defaultOut is the output a pull of source without OUT writes, as
// Apptainer names it (outName of the source's name).
func defaultOut(source string, sandbox bool) (string, error) {
	if transport.IsWebFile(source) {
		u, err := parseHTTPSource(source)
		if err != nil {
			return "", err
		}
		return httpOutName(u, sandbox), nil
	}
	if name, _, _ := transport.Split(source); name == transport.Oras {
		ref, err := oras.ParseRef(source)
		if err != nil {
			return "", err
		}
		return outName(ref.Name(), sandbox), nil
	}
	src, err := oci.ParseSource(source)
	if err != nil {
		return "", err
	}
	return outName(src.Name(), sandbox), nil
}

// outName is the output a pull without OUT writes: NAME.sif, or the
// directory NAME for a sandbox.
func outName(name string, sandbox bool) string {
	if sandbox {
		return name
	}
	return name + ".sif"
}
