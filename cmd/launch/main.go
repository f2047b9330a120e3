// Command launch runs programs from single-file container images (SIF) for
// unprivileged users on shared HPC clusters, and builds those images.
//
// main only dispatches: the hidden container stage (re-executed inside new
// namespaces) or the user-facing command line. For exec, run and shell,
// internal/preinit has usually forked before the Go runtime started: this
// process is then already in its own user and mount namespaces, and a small
// parent outside waits for it.
package main

import (
	"fmt"
	"os"

	"github.com/launch-hpc/launch/internal/cli"
	"github.com/launch-hpc/launch/internal/container"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/preinit"
	"github.com/launch-hpc/launch/internal/timeline"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == container.ReexecArg {
		os.Exit(container.StageMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == container.JoinStageArg {
		os.Exit(container.JoinStageMain(os.Args[2:]))
	}
	pre := preinit.Get()
	if len(os.Args) > 1 && os.Args[1] == preinit.JoinArg {
		os.Exit(container.JoinMain(os.Args[2:], pre))
	}
	if pre.Broken {
		msg.Fatal(os.Stderr, fmt.Errorf("setting up the user namespace: %w%s", pre.Err, container.UserNSAdvice(pre.Err)))
		os.Exit(cli.ExitLauncherError)
	}
	role := "launcher"
	if pre.Done {
		role = "stage"
	}
	timeline.FromEnv(role).Mark("main")
	os.Exit(cli.Main(os.Args[1:], pre))
}
