package cli

import (
	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/overlayimg"
)

func newOverlayCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "overlay",
		Short: "Make overlay images",
		Long: `overlay makes ext3 overlay images for --overlay FILE, or adds one to a SIF
as its overlay partition (written with launch exec --writable IMAGE.sif),
like Apptainer's overlay create.`,
		Example: `  launch overlay create --size 1024 env.img
  launch exec --overlay env.img app.sif pip install --prefix /opt/env numpy
  launch overlay create --size 512 app.sif`,
	}
	cliutil.GroupOnly(c)
	c.AddCommand(newOverlayCreateCmd(g))
	return c
}

func newOverlayCreateCmd(_ *globals) *cobra.Command {
	o := overlayimg.Options{}
	c := &cobra.Command{
		Use:   "create [--size MiB] [--sparse] [--create-dir DIR]... [--fakeroot] FILE",
		Short: "Make an ext3 overlay image, or add one to a SIF",
		Long: `create makes FILE an ext3 overlay image (upper/ and work/ directories, owned
by you), or, when FILE is a SIF, appends such an image to it as its overlay
partition. A signed SIF is refused unless --force.`,
		Example: `  launch overlay create --size 1024 --create-dir /opt/env env.img`,
		Args:    cliutil.ExactArgs(1, "an image file"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.Path = args[0]
			return overlayimg.Create(o)
		},
	}
	fl := c.Flags()
	fl.IntVarP(&o.Size, "size", "s", overlayimg.MinSize, "size of the image in MiB")
	fl.BoolVar(&o.Sparse, "sparse", false, "make a sparse image (only what is written takes space)")
	fl.StringArrayVar(&o.Dirs, "create-dir", nil, "make this directory (and its parents) in the overlay (repeatable)")
	fl.BoolVarP(&o.Fakeroot, "fakeroot", "f", false, "make the overlay for use with --fakeroot (owned by root)")
	fl.BoolVar(&o.Force, "force", false, "add to a SIF even if it is signed")
	return c
}
