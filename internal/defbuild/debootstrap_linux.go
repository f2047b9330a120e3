package defbuild

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/launch-hpc/launch/internal/fakeroot"
)

// debootstrapFakeroot runs the host's debootstrap (cmd) as root in the
// user's fakeroot namespace m, with a mount and a PID namespace of its own:
//
//   - it may chroot, chown to the ids of the user's subordinate range (a
//     package's system users) and mount proc in the new tree;
//   - it may not make device nodes (no user namespace may). With
//     container=lxc in its environment debootstrap knows that: it skips
//     its mknod test and, when mknod fails, binds the host's /dev/null,
//     /dev/zero, … onto a tmpfs over the tree's /dev for the second stage
//     instead (setup_devices_bind). The tree keeps an empty /dev, which
//     launch mounts over when it runs the image;
//   - every mount it makes dies with its mount namespace, and every
//     process it starts with its PID namespace (it is that namespace's
//     init), even when the build is killed.
func debootstrapFakeroot(cmd *exec.Cmd, m *fakeroot.Maps) error {
	if cmd.Err != nil {
		return cmd.Err
	}
	cmd.Env = append(os.Environ(), "container=lxc")
	return m.Run(cmd, syscall.CLONE_NEWNS|syscall.CLONE_NEWPID)
}
