// Command launch runs programs from single-file container images (SIF) for
// unprivileged users on shared HPC clusters, and builds those images.
//
// main only dispatches: the hidden container stage (re-executed inside the
// new user and mount namespaces) or the user-facing command line.
package main

import (
	"os"

	"github.com/launch-hpc/launch/internal/cli"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/timeline"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == container.StageArg {
		os.Exit(container.StageMain(os.Args[2:]))
	}
	timeline.FromEnv("launcher").Mark("main")
	os.Exit(cli.Main(os.Args[1:]))
}
