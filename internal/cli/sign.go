package cli

import (
	"github.com/spf13/cobra"

	"github.com/launch-hpc/launch/internal/imagetrust"
)

// signForwarder is a command that hands itself, with the whole command
// line, to the launch-sign helper (key, sign, verify), so that the OpenPGP
// and x509 libraries are not part of launch.
func signForwarder(use, short string) func(g *globals) *cobra.Command {
	return func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short,
			DisableFlagParsing: true,
			Annotations:        map[string]string{forwardAnnotation: "true"},
			RunE:               func(*cobra.Command, []string) error { return forwardTo(imagetrust.HelperName, g.Args()) },
		}
	}
}

// signCommands are launch's commands for signed images.
func signCommands() []command {
	return []command{
		{[]string{"key"}, signForwarder("key newpair|list|export|import|remove", "Manage the OpenPGP keys that sign and verify images")},
		{[]string{"sign"}, signForwarder("sign [--keyidx N | --key PRIVATE.pem] IMAGE.sif", "Add a signature to a SIF image")},
		{[]string{"verify"}, signForwarder("verify [--key PUBLIC.pem | --certificate CERT --certificate-roots PEM] [--json] IMAGE.sif", "Check the signatures of a SIF image")},
	}
}
