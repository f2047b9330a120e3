package cli

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/helper"
	"github.com/launch-hpc/launch/internal/transport"
)

// HelperName is the helper program that runs the commands needing the OCI
// libraries (pull, cache, build from OCI sources). Keeping them out of the
// launch binary keeps their package initialisation off the start-up path of
// every `launch exec`.
const HelperName = "launch-oci"

// OCICommands are the commands that need the OCI libraries. The launch
// binary's are forwarders to the helper; the helper has the real ones.
type OCICommands struct {
	Pull  func(g cliutil.Globals) *cobra.Command
	Cache func(g cliutil.Globals) *cobra.Command
	Build func(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, force bool, out, source string) error
	// Push and Registry are `launch push` and `launch registry`.
	Push, Registry func(g cliutil.Globals) *cobra.Command
}

// looksLikeOCISource reports whether a build SOURCE names an image by
// transport (docker://, oci:, … or an unknown one, which launch-oci refuses
// by name) rather than a local path.
func looksLikeOCISource(s string) bool { return transport.LooksLikeSource(s) }

// forwarders hand the OCI commands to the helper program.
func forwarders() OCICommands {
	stub := func(use, short string) func(g cliutil.Globals) *cobra.Command {
		return func(g cliutil.Globals) *cobra.Command {
			return &cobra.Command{
				Use: use, Short: short,
				DisableFlagParsing: true,
				Annotations:        map[string]string{forwardAnnotation: "true"},
				RunE:               func(*cobra.Command, []string) error { return forward(g.Args()) },
			}
		}
	}
	return OCICommands{
		Pull:  stub("pull [flags] [OUT.sif] SOURCE", "Fetch an OCI/Docker image and convert it to a SIF file"),
		Cache: stub("cache list|clean", "List or empty the cache of pulled images"),
		Push:  stub("push [flags] IMAGE.sif oras://REF", "Upload a SIF file to an OCI registry as an ORAS artifact"),
		Registry: stub("registry login|logout|list",
			"Log in to or out of OCI registries (docker://, oras://), or list the logins"),
		Build: func(_ context.Context, g cliutil.Globals, _ *cliutil.OCIFlags, _ bool, _, _ string) error {
			return forward(g.Args())
		},
	}
}

// forwardAnnotation marks the commands that hand themselves to the helper.
const forwardAnnotation = "launch-forward"

// forward replaces this process with the OCI helper, given args (the
// command line without the program name).
func forward(args []string) error { return forwardTo(HelperName, args) }

// forwardTo replaces this process with the helper program name, given args.
func forwardTo(name string, args []string) error {
	path, err := helper.Find(name)
	if err != nil {
		return err
	}
	argv := append([]string{path}, args...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil
}

// helperPath finds the OCI helper (helper.Find).
func helperPath() (string, error) { return helper.Find(HelperName) }
