package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/sifedit"
)

// sifAddFlags are sif add's flags, Apptainer's numbers.
type sifAddFlags struct {
	datatype, parttype, partfs, partarch int
	groupid                              uint32
	name                                 string
	force                                bool
}

// sifArchs are SIF's architecture numbers (Apptainer's --partarch).
var sifArchs = map[int]string{1: "386", 2: "amd64", 3: "arm", 4: "arm64", 5: "ppc64", 6: "ppc64le",
	7: "mips", 8: "mipsle", 9: "mips64", 10: "mips64le", 11: "s390x", 12: "riscv64"}

func newSifAddCmd(_ *globals) *cobra.Command {
	f := sifAddFlags{}
	c := &cobra.Command{
		Use:   "add [flags] IMAGE FILE",
		Short: "Add a data object (an overlay partition, …) to a SIF file",
		Long: `add appends FILE to the SIF IMAGE as a data object. The numbers are
Apptainer's: --datatype 4 is a partition, with --parttype (1 system, 2 primary
system, 3 data, 4 overlay), --partfs (1 squashfs, 2 ext3, 3 archive, 4 raw)
and --partarch (2 amd64, 4 arm64, …; the SIF's own by default).`,
		Example: `  launch sif add --datatype 4 --parttype 4 --partfs 2 app.sif overlay.img`,
		Args:    cliutil.ExactArgs(2, "a SIF file and the file to add"),
		RunE: func(_ *cobra.Command, args []string) error {
			if f.datatype < 1 || f.datatype > 10 {
				return fmt.Errorf("--datatype %d: want a SIF data type number, 1 to 10 (4: partition)", f.datatype)
			}
			in, err := os.Open(args[1])
			if err != nil {
				return fmt.Errorf("opening %s: %w", args[1], err)
			}
			defer in.Close()
			sf, err := sifedit.Open(args[0])
			if err != nil {
				return err
			}
			defer sf.Close()
			if err := sf.CheckUnsigned(f.force); err != nil {
				return err
			}
			var opts []sif.DescriptorInputOpt
			if f.groupid != 0 {
				opts = append(opts, sif.OptGroupID(f.groupid))
			}
			if f.name != "" {
				opts = append(opts, sif.OptObjectName(f.name))
			}
			dt := sif.DataType(f.datatype + 0x4000)
			if dt != sif.DataPartition {
				return sf.Add(in, dt, opts...)
			}
			if f.parttype < 1 || f.parttype > 4 || f.partfs < 1 || f.partfs > 5 {
				return fmt.Errorf("a partition needs --parttype (1 to 4) and --partfs (1 to 5)")
			}
			arch := ""
			if f.partarch != 0 {
				if arch = sifArchs[f.partarch]; arch == "" {
					return fmt.Errorf("--partarch %d: unknown architecture number", f.partarch)
				}
			}
			return sf.AddPartition(in, sif.FSType(f.partfs), sif.PartType(f.parttype), arch, opts...)
		},
	}
	fl := c.Flags()
	fl.IntVar(&f.datatype, "datatype", 0, "data type (4: partition)")
	fl.IntVar(&f.parttype, "parttype", 0, "partition type (4: overlay)")
	fl.IntVar(&f.partfs, "partfs", 0, "partition filesystem (1: squashfs, 2: ext3)")
	fl.IntVar(&f.partarch, "partarch", 0, "partition architecture (2: amd64, 4: arm64)")
	fl.Uint32Var(&f.groupid, "groupid", 0, "group ID of the object (1: the root filesystem's)")
	fl.StringVar(&f.name, "name", "", "name of the object")
	fl.BoolVar(&f.force, "force", false, "change a signed SIF anyway")
	return c
}

func newSifDelCmd(_ *globals) *cobra.Command {
	force := false
	c := &cobra.Command{
		Use:     "del ID IMAGE",
		Short:   "Delete a data object (an overlay partition, …) from a SIF file",
		Example: `  launch sif del 5 app.sif`,
		Args:    cliutil.ExactArgs(2, "a descriptor ID and a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			return editSIF(args[0], args[1], force, (*sifedit.File).Delete)
		},
	}
	c.Flags().BoolVar(&force, "force", false, "change a signed SIF anyway")
	return c
}

func newSifSetprimCmd(_ *globals) *cobra.Command {
	force := false
	c := &cobra.Command{
		Use:     "setprim ID IMAGE",
		Short:   "Make a partition the primary system partition of a SIF file",
		Example: `  launch sif setprim 3 app.sif`,
		Args:    cliutil.ExactArgs(2, "a descriptor ID and a SIF file"),
		RunE: func(_ *cobra.Command, args []string) error {
			return editSIF(args[0], args[1], force, (*sifedit.File).SetPrimary)
		},
	}
	c.Flags().BoolVar(&force, "force", false, "change a signed SIF anyway")
	return c
}

// editSIF applies do to descriptor idArg of the SIF path.
func editSIF(idArg, path string, force bool, do func(*sifedit.File, uint32) error) error {
	id, err := strconv.ParseUint(idArg, 10, 32)
	if err != nil || id == 0 {
		return fmt.Errorf("descriptor ID %q is not a positive number (see 'launch sif list %s')", idArg, path)
	}
	sf, err := sifedit.Open(path)
	if err != nil {
		return err
	}
	defer sf.Close()
	if err := sf.CheckUnsigned(force); err != nil {
		return err
	}
	return do(sf, uint32(id))
}
