// Command launch-oci is launch's helper for the commands that need the OCI
// libraries: pull, cache, and build from docker://, oci:, oci-archive: and
// docker-archive: sources. launch runs it (from next to itself, or from
// $(PREFIX)/libexec/launch) with its own arguments; it is not meant to be run
// by hand, though it works the same way.
package main

import (
	"os"

	"github.com/launch-hpc/launch/internal/cli"
	"github.com/launch-hpc/launch/internal/ocicli"
)

func main() {
	os.Exit(cli.MainWith(os.Args[1:], ocicli.Commands()))
}
