// Command launch-cdi is launch's helper for CDI devices (--device, and
// --nv with launch.conf gpu.nv_prefer_cdi): it reads the Container Device
// Interface specs of the given directories with the CNCF CDI library and
// prints the edits of the named devices as JSON. launch runs it (from next
// to itself, or from $(PREFIX)/libexec/launch) only when a device is asked
// for, so the library is not part of every container's start.
//
//	launch-cdi resolve --spec-dirs DIR[,DIR…] [--optional] -- NAME…
//
// On an error it prints one line on stderr and exits 1.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/launch-hpc/launch/internal/cdi"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "resolve" {
		return fmt.Errorf("usage: launch-cdi resolve --spec-dirs DIR[,DIR...] [--optional] -- NAME...")
	}
	var dirs []string
	optional := false
	args = args[1:]
	for len(args) > 0 && args[0] != "--" {
		switch args[0] {
		case "--spec-dirs":
			if len(args) < 2 {
				return fmt.Errorf("--spec-dirs needs a value")
			}
			for _, d := range strings.Split(args[1], ",") {
				if d != "" {
					dirs = append(dirs, d)
				}
			}
			args = args[2:]
		case "--optional":
			optional = true
			args = args[1:]
		default:
			return fmt.Errorf("unknown option %q", args[0])
		}
	}
	if len(args) > 0 {
		args = args[1:]
	}
	e, err := cdi.Resolve(dirs, args, optional)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(e)
}
