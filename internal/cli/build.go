package cli

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/layout"
)

// buildFlags are the options of `launch build`.
type buildFlags struct {
	sandbox, force, keepPrivileged bool
	oci                            cliutil.OCIFlags
	def                            defFlags
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [--sandbox] [--force] [--notest] [--build-arg K=V] OUT SOURCE",
		Short: "Build a SIF image from a directory, an image or an OCI source, or unpack an image",
		Long: `build makes the new SIF image OUT from SOURCE:
  DIR                        a root filesystem directory
  IMAGE.sif                  an existing SIF (its root filesystem is repacked)
  docker://REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG],
  docker-archive:FILE[:TAG]  an OCI/Docker image, as 'launch pull' converts it
                             (see 'launch pull --help' for the flags)
  oras://REF                 a SIF file stored in a registry (launch push)
  FILE.def                   an Apptainer definition file (docs/deffile.md):
                             --build-arg, --build-arg-file, --notest,
                             --fakeroot and --bind apply

From a directory, build packs the tree SOURCE into OUT: its
SquashFS root filesystem becomes the primary system partition, and the
Apptainer metadata under SOURCE` + layout.Dir + ` (runscript, env/, labels.json)
is kept as it is. A definition file at SOURCE` + layout.Deffile + ` is
also stored in its own SIF descriptor.

With --sandbox, build unpacks the image SOURCE (a SIF or SquashFS file, or
any of the sources above) into the new directory OUT instead; the files
belong to the calling user. Set-uid and
set-gid bits are cleared, device nodes left out and only user.* extended
attributes kept (no file capabilities), here and when an image is repacked:
an image is anybody's, and unpacked as it is it can put a set-uid-root shell
on the host. --keep-privileged keeps them (root only gets device nodes and
capabilities). A build by a user other than root makes every file root's in
the image and clears set-uid and set-gid bits there too.

OUT is written under a temporary name and renamed into place, so a failed or
interrupted build leaves no partial OUT. An existing OUT is replaced only
with --force.`,
		Example: `  launch build app.sif ./rootfs/
  launch build --force app.sif ./rootfs/
  launch build app.sif docker://alpine:3.20
  launch build app.sif oci-archive:./image.tar
  launch build --sandbox ./rootfs/ app.sif
  launch -v build app.sif ./rootfs/   # show mksquashfs output`,
		Args: cliutil.ExactArgs(2, "OUT and SOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conf, err := config.LoadSite()
			if err != nil {
				return err
			}
			comp, err := f.oci.CompressionFor(&conf.Config)
			if err != nil {
				return err
			}
			o := build.Options{Out: args[0], Source: args[1], Force: f.force, Log: g.Log(),
				Compression: comp, Mksquashfs: conf.Tools.Mksquashfs, Unsquashfs: conf.Tools.Unsquashfs,
				KeepPrivileged: f.keepPrivileged}
			if g.Verbose() {
				o.ToolOutput = g.stderr
			}
			if !looksLikeOCISource(o.Source) && isDeffile(o.Source) {
				return buildDeffile(ctx, g, &f, o)
			}
			if f.def.fakeroot {
				return errors.New("--fakeroot is for building from a definition file (its %post); this source runs nothing")
			}
			if len(f.def.binds) > 0 {
				return errors.New("--bind is for building from a definition file (its %post and %test); this source runs nothing")
			}
			if looksLikeOCISource(o.Source) {
				f.oci.Sandbox, f.oci.KeepPrivileged = f.sandbox, f.keepPrivileged
				return g.oci.Build(ctx, g, &f.oci, f.force, o.Out, o.Source)
			}
			if f.sandbox {
				return build.Sandbox(ctx, o)
			}
			img, err := image.Open(o.Source)
			switch {
			case err == nil && img.Format != image.FormatDir:
				return build.FromImage(ctx, o)
			case err != nil && !errors.Is(err, image.ErrNotImage) && isRegular(o.Source):
				return err // a damaged SIF or SquashFS file: say what is wrong with it
			}
			return build.Build(ctx, o)
		},
	}
	c.Flags().BoolVarP(&f.sandbox, "sandbox", "s", false, "unpack the image SOURCE into the directory OUT")
	c.Flags().BoolVarP(&f.force, "force", "F", false, "replace OUT if it exists")
	c.Flags().BoolVar(&f.keepPrivileged, "keep-privileged", false,
		"when unpacking or repacking an image, keep its set-uid/set-gid bits, device nodes and file capabilities")
	c.Flags().BoolVarP(&f.def.noTest, "notest", "T", false, "definition file: do not run %test after the build")
	c.Flags().StringArrayVar(&f.def.buildArgs, "build-arg", nil, "definition file: set {{ KEY }} to VALUE (KEY=VALUE, repeatable)")
	c.Flags().StringVar(&f.def.buildArgFile, "build-arg-file", "", "definition file: read KEY=VALUE build arguments from a file")
	c.Flags().BoolVar(&f.def.warnUnused, "warn-unused-build-args", false, "definition file: only warn about build arguments it does not use")
	defer registerAlready(c, "build")
	c.Flags().BoolVarP(&f.def.fakeroot, "fakeroot", "f", false, "definition file: run %post as uid 0 in a user namespace mapped onto your ids and subordinate ranges")
	c.Flags().StringArrayVarP(&f.def.binds, "bind", "B", nil, "definition file: bind SRC[:DST[:ro|rw]] into the image for %post and %test (comma list, repeatable)")
	f.oci.Register(c)
	wrapBuildSign(c, g, &f.sandbox)
	return c
}

// isRegular reports whether path is a regular file.
func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
