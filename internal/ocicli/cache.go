package ocicli

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/progress"
)

// NewCacheCmd is `launch cache list|clean`.
func NewCacheCmd(g cliutil.Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "cache list|clean",
		Short: "List or empty the cache of pulled images",
		Long: `The cache ($LAUNCH_CACHEDIR, default ~/.launch/cache, mode 0700) keeps
registry blobs by digest and the SIF files converted from them by manifest
digest, so that pulling an image again costs a copy. It is safe to use from
many jobs at once.

Only a cache no other user can write is used: the directory must be yours
and writable by nobody else, and every directory above it yours or root's
and not writable by others unless sticky (like /tmp); otherwise launch
stops and names the directory. A cached SIF is used only while it matches
the SHA-256 recorded when it was made; else it is converted again.`,
	}
	open := func() (*cache.Cache, error) {
		dir, err := cache.DefaultDir()
		if err != nil {
			return nil, err
		}
		return cache.Open(dir)
	}
	// kinds are the entry kinds a --type list names (Apptainer's names
	// too: oci is the SIFs converted from OCI sources, oras an oras://
	// SIF, which is kept as a blob); nil for all. none is true when it
	// names only what launch never caches (library, shub, net, ipfs).
	kinds := func(t string) (k []string, none bool, err error) {
		if strings.TrimSpace(t) == "" {
			return nil, false, nil
		}
		for _, name := range strings.Split(t, ",") {
			switch strings.TrimSpace(name) {
			case "": // a stray comma names nothing (not everything)
			case "all":
				return nil, false, nil
			case "blob", "blobs", "oras":
				k = append(k, cache.KindBlob)
			case "sif", "oci", "oci-tmp":
				k = append(k, cache.KindSIF)
			case "library", "shub", "net", "ipfs":
			default:
				return nil, false, fmt.Errorf("--type %q: want blob, sif, oci, oras or all (a comma list)", name)
			}
		}
		return k, len(k) == 0, nil
	}
	var listType, cleanType string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the cached blobs and SIF files",
		Args:  cliutil.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, none, err := kinds(listType)
			if err != nil {
				return err
			}
			ca, err := open()
			if err != nil {
				return err
			}
			defer ca.Close()
			ents, err := ca.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.Stdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tDIGEST\tSIZE\tLAST USED")
			var total int64
			n := 0
			for _, e := range ents {
				if none || len(k) > 0 && !slices.Contains(k, e.Kind) {
					continue
				}
				n++
				total += e.Size
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Kind, e.Digest, progress.Size(e.Size), e.Used.Format("2006-01-02 15:04"))
			}
			tw.Flush()
			fmt.Fprintf(g.Stdout(), "%d entr%s, %s in %s\n", n, map[bool]string{true: "y", false: "ies"}[n == 1], progress.Size(total), ca.Dir())
			return nil
		},
	}
	list.Flags().StringVarP(&listType, "type", "T", "all", "what to list: blob, sif or all (Apptainer's oci, oras too; a comma list)")
	var days int
	var dryRun bool
	clean := &cobra.Command{
		Use:   "clean",
		Short: "Remove cached blobs and SIF files",
		Long: `clean removes cache entries (all of them, or those of --type, or those
not used for --days days). Pulls running at the same moment keep the copies
they have open. --dry-run lists what would go and removes nothing.`,
		Args: cliutil.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, none, err := kinds(cleanType)
			if err != nil {
				return err
			}
			ca, err := open()
			if err != nil {
				return err
			}
			defer ca.Close()
			o := cache.CleanOptions{Kinds: k, DryRun: dryRun}
			if days < 0 {
				return fmt.Errorf("--days %d: want 0 or more", days)
			}
			if cmd.Flags().Changed("days") {
				o.UsedBefore = time.Now().AddDate(0, 0, -days)
			}
			var gone []cache.Entry
			if !none {
				gone, err = ca.CleanWith(o)
			}
			var size int64
			for _, e := range gone {
				size += e.Size
				if dryRun {
					fmt.Fprintf(g.Stdout(), "would remove %s %s (%s, last used %s)\n", e.Kind, e.Digest, progress.Size(e.Size), e.Used.Format("2006-01-02 15:04"))
				}
			}
			if err != nil {
				return err
			}
			n := len(gone)
			verb := "Removed"
			if dryRun {
				verb = "Would remove"
			}
			g.Log().Infof("%s %d cache entr%s (%s) from %s", verb, n, map[bool]string{true: "y", false: "ies"}[n == 1], progress.Size(size), ca.Dir())
			return nil
		},
	}
	clean.Flags().StringVarP(&cleanType, "type", "T", "all", "what to remove: blob, sif or all (Apptainer's oci, oras too; a comma list)")
	clean.Flags().IntVarP(&days, "days", "D", 0, "remove only the entries not used for this many days")
	clean.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be removed; remove nothing")
	clean.Flags().BoolP("force", "f", false, "accepted for Apptainer compatibility (clean never asks)")
	c.AddCommand(list, clean, newCacheSIFCmd(g))
	cliutil.GroupOnly(c)
	return c
}
