package ocicli

import "github.com/launch-hpc/launch/internal/cli"

// Commands are the OCI commands this package implements, as the command
// tree takes them: the one list, for the launch-oci helper and for the
// generated manual pages (tools/gendocs).
func Commands() cli.OCICommands {
	return cli.OCICommands{
		Pull:     NewPullCmd,
		Cache:    NewCacheCmd,
		Build:    BuildOCI,
		Push:     NewPushCmd,
		Registry: NewRegistryCmd,
	}
}
