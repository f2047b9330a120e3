package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/cliutil"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Show the version of launch",
		Example: "  launch version",
		Args:    cliutil.ExactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "launch version %s (commit %s, %s, %s/%s)\n",
				buildinfo.Version, buildinfo.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if g.Verbose() {
				fmt.Fprintf(g.stdout, "config file: %s\n", buildinfo.ConfigFile())
			}
			return nil
		},
	}
}
