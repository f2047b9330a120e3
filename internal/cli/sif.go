package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/sifinfo"
)

func newSifCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "sif",
		Short: "Show the structure of a SIF file",
		Long: `sif shows how a SIF file is laid out: its global header, its data object
descriptors, and the details of one descriptor, like Apptainer's sif
subcommands.`,
		Example: `  launch sif list app.sif
  launch sif info 2 app.sif
  launch sif header app.sif`,
	}
	cliutil.GroupOnly(c)
	c.AddCommand(newSifListCmd(g), newSifInfoCmd(g), newSifHeaderCmd(g), newSifDumpCmd(g))
	c.AddCommand(newSifAddCmd(g), newSifDelCmd(g), newSifSetprimCmd(g))
	return c
}

func newSifListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list IMAGE",
		Short:   "List the data object descriptors of a SIF file",
		Example: `  launch sif list app.sif`,
		Args:    cliutil.ExactArgs(1, "a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := sifinfo.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return sifinfo.WriteList(g.stdout, f.FileImage)
		},
	}
}

func newSifInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "info ID IMAGE",
		Short:   "Show the details of one data object descriptor of a SIF file",
		Example: `  launch sif info 2 app.sif`,
		Args:    cliutil.ExactArgs(2, "a descriptor ID and a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			return withDescriptor(args, func(f *sif.FileImage, id uint32) error { return sifinfo.WriteInfo(g.stdout, f, id) })
		},
	}
}

func newSifDumpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "dump ID IMAGE",
		Short:   "Write the data of one data object of a SIF file to standard output",
		Example: `  launch sif dump 1 app.sif > deffile`,
		Args:    cliutil.ExactArgs(2, "a descriptor ID and a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			return withDescriptor(args, func(f *sif.FileImage, id uint32) error { return sifinfo.WriteData(g.stdout, f, id) })
		},
	}
}

// withDescriptor runs do on the SIF file args[1] and the descriptor ID
// args[0] (info, dump).
func withDescriptor(args []string, do func(f *sif.FileImage, id uint32) error) error {
	id, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil || id == 0 {
		return fmt.Errorf("descriptor ID %q is not a positive number (see 'launch sif list %s')", args[0], args[1])
	}
	f, err := sifinfo.Open(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := do(f.FileImage, uint32(id)); err != nil {
		return fmt.Errorf("SIF file %s: %w", args[1], err)
	}
	return nil
}

func newSifHeaderCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "header IMAGE",
		Short:   "Show the global header of a SIF file",
		Example: `  launch sif header app.sif`,
		Args:    cliutil.ExactArgs(1, "a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			f, err := sifinfo.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return sifinfo.WriteHeader(g.stdout, f.FileImage)
		},
	}
}
