package ocicli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/ocibuild"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// sandboxFromOCI unpacks the OCI image src into the new directory out: it
// is converted (or taken from the cache) into a SIF in a private temporary
// directory exactly as `launch pull` makes it, then unpacked by
// build.Sandbox, so the tree is what `launch build --sandbox OUT IMAGE.sif`
// gives (set-uid/set-gid bits cleared, device nodes and file capabilities
// left out unless --keep-privileged; Apptainer's /.singularity.d).
func sandboxFromOCI(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, src oci.Source, out string, force bool) error {
	if err := build.CheckOut(out, force, true); err != nil {
		return err
	}
	tmp, err := tmptree.MkdirTemp(build.TmpDir(), tmptree.KindBuild)
	if err != nil {
		return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
	}
	defer tmp.Remove()
	sif := filepath.Join(tmp.Path, "image.sif")
	o, err := ociOptions(g, f, src, sif, false)
	if err != nil {
		return err
	}
	if err := ocibuild.FromOCI(ctx, src, o); err != nil {
		return err
	}
	so := o.Options
	so.Source, so.Out, so.Force, so.NoSweep, so.KeepPrivileged = sif, out, force, true, f.KeepPrivileged
	return build.Sandbox(ctx, so)
}
