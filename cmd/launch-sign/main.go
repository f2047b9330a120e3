// Command launch-sign is launch's helper for signed images: `launch key`,
// `launch sign`, `launch verify`, and the policy check a launch runs when
// the verdict on an image is not yet in the user's cache. launch runs it
// (from next to itself, or from $(PREFIX)/libexec/launch) with its own
// arguments, so that the OpenPGP and x509 libraries stay out of every
// `launch exec`.
package main

import (
	"os"

	"github.com/launch-hpc/launch/internal/signcli"
)

func main() { os.Exit(signcli.Main(os.Args[1:])) }
