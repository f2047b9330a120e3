package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/buildinfo"
	"github.com/launch-hpc/launch/internal/cliutil"
)

// versionLine is what `launch version` and `launch --version` print.
func versionLine() string {
	return fmt.Sprintf("launch version %s (commit %s, %s, %s/%s)\n",
		buildinfo.Version, buildinfo.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Show the version of launch",
		Example: "  launch version",
		Args:    cliutil.ExactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprint(g.stdout, versionLine())
			if g.Verbose() {
				fmt.Fprintf(g.stdout, "config file: %s\n", buildinfo.ConfigFile())
			}
			return nil
		},
	}
}

// newHelpCmd is `launch help [COMMAND...]`: cobra's help command, except
// that the help of a command the helper program runs (pull, cache) is the
// helper's, so that `launch help pull` prints what `launch pull --help`
// prints.
func newHelpCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long: `Help provides help for any command in the application.
Simply type launch help [path to command] for full details.`,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := c.Root().Find(args)
			if cmd == nil || err != nil {
				c.Printf("Unknown help topic %#q\n", args)
				return c.Root().Usage()
			}
			if cmd.Annotations[forwardAnnotation] != "" {
				return forward(append(append([]string{}, args...), "--help"))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}
