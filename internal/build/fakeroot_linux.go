package build

import (
	"os/exec"

	"github.com/launch-hpc/launch/internal/fakeroot"
)

// runFakeroot runs a helper program (mksquashfs) to its end as root in the
// user's fakeroot namespace (m), so that it reads the tree of a --fakeroot
// build as that build's %post saw it: the user's files as root's, those of
// subordinate ids as the ids they have inside (subordinate start+99 as
// 100). Like runTool, the helper dies with launch.
func runFakeroot(cmd *exec.Cmd, m *fakeroot.Maps) error {
	if cmd.Err != nil { // not found: said as runTool would
		return cmd.Err
	}
	return m.Run(cmd, 0)
}
