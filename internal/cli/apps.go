package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/runspec"
)

// The commands that read what a definition file's %test, %help and SCIF
// app sections wrote: `launch test` and `launch run-help`; --app of exec,
// run, shell and test is registerApp.

// registerApp adds --app to exec, run, shell and test.
func registerApp(c *cobra.Command, f *runFlags) {
	c.Flags().StringVar(&f.app, "app", "", "the SCIF app NAME of the image: its runscript (run), test (test), environment and SCIF_ variables")
}

func newTestCmd(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "test [flags] IMAGE [ARG...]",
		Short: "Run the image's test script",
		Long: `Run the test script of IMAGE (` + layout.Test + `, a definition file's
%test), or with --app NAME the app's (%apptest), as Apptainer does. An image
without a test script passes: launch says so and exits 0. The exit status is
the test's own; 255 means launch itself failed.`,
		Example: `  launch test app.sif
  launch test --app foo app.sif`,
		Args: cliutil.MinArgs(1, "an image"),
		RunE: func(c *cobra.Command, args []string) error {
			return runContainer(g, f, runspec.ModeTest, args[0], args[1:])
		},
	}
	f.register(c)
	registerApp(c, f)
	return c
}

func newRunHelpCmd(g *globals) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "run-help [--app NAME] IMAGE",
		Short: "Show the help text of an image (%help) or of one of its apps (%apphelp)",
		Long: `Print the help text a definition file's %help section wrote into IMAGE
(` + layout.RunscriptHelp + `), or with --app NAME the app's %apphelp, as
Apptainer's run-help does.`,
		Example: `  launch run-help app.sif
  launch run-help --app foo app.sif`,
		Args: cliutil.ExactArgs(1, "an image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, err := config.LoadSite()
			if err != nil {
				return err
			}
			path, err := imageToRead(g, args[0])
			if err != nil {
				return err
			}
			img, err := image.Open(path)
			if err != nil {
				return err
			}
			f := inspectFlags{helpfile: true, app: app}
			x, err := readInspectExtra(cmd, img, conf.Tools.Unsquashfs, f)
			if err != nil {
				return err
			}
			help := x.help
			if app != "" {
				help = x.apps[app].help
			}
			if strings.TrimSpace(help) == "" {
				fmt.Fprintln(g.stdout, "No help sections were defined for this image")
				return nil
			}
			// As Apptainer's: the text without its trailing blank lines.
			fmt.Fprintln(g.stdout, strings.TrimRight(help, "\n"))
			return nil
		},
	}
	c.Flags().StringVar(&app, "app", "", "show the help of the SCIF app NAME")
	return c
}
