package ocicli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/ocibuild"
	"github.com/launch-hpc/launch/internal/transport"
)

// newCacheSIFCmd is `launch cache sif SOURCE` (hidden): it puts the SIF of
// SOURCE in the cache, reusing one that is there (ocibuild.CachedSIF), and
// prints its path. launch exec, run and shell run it for a docker://, oci:
// oci-archive: or oras:// image, then run the cached SIF.
func newCacheSIFCmd(g cliutil.Globals) *cobra.Command {
	var f cliutil.OCIFlags
	c := &cobra.Command{
		Use:    "sif [flags] SOURCE",
		Short:  "Put the SIF of an OCI image in the cache and print its path",
		Hidden: true,
		Args:   cliutil.MinArgs(1, "an image source"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%s takes one SOURCE (got %d arguments)", cmd.CommandPath(), len(args))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if name, _, _ := transport.Split(args[0]); name == "oras" {
				p, err := orasCachedSIF(ctx, g, &f, args[0])
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(g.Stdout(), p)
				return err
			}
			src, err := oci.ParseSource(args[0])
			if err != nil {
				return err
			}
			o, err := ociOptions(g, &f, src, "", false)
			if err != nil {
				return err
			}
			if o.Cache == nil && !f.DisableCache { // ociOptions opens it for registries only
				dir, err := cache.DefaultDir()
				if err != nil {
					return err
				}
				if o.Cache, err = cache.Open(dir); err != nil {
					return err
				}
				o.Cache.Warn = o.Log.Warnf
			}
			p, err := ocibuild.CachedSIF(ctx, src, o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(g.Stdout(), p)
			return err
		},
	}
	f.Register(c)
	return c
}
