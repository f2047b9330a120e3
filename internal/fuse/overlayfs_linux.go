package fuse

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FindFuseOverlayfs returns the fuse-overlayfs program named by name (a path,
// or a name looked up in PATH).
func FindFuseOverlayfs(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("no fuse-overlayfs program configured (launch.conf tools.fuse_overlayfs)")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("fuse-overlayfs program %q not found (launch.conf tools.fuse_overlayfs; install the fuse-overlayfs package)", name)
	}
	return p, nil
}

// OverlayOptions describe one fuse-overlayfs mount.
type OverlayOptions struct {
	// Lower are the read-only layers, topmost first.
	Lower []string
	// Upper and Work are the writable layer and fuse-overlayfs's work
	// directory, on the same filesystem.
	Upper, Work string
	// Target is the mount point (an existing directory).
	Target string
	// UID and GID own the mount; every file is shown as theirs
	// (squash_to_uid/gid), so the user can change the image's files.
	UID, GID int
	// Binary is the fuse-overlayfs program.
	Binary string
	// Fork forks the server, as in MountOptions.
	Fork Forker
}

// MountOverlay mounts a FUSE filesystem on o.Target and starts
// fuse-overlayfs serving it through the already-mounted /dev/fuse descriptor
// (fd 3 in the server, named /dev/fd/3), as Mount does for squashfuse. The
// first access to Target waits until the server has opened its layers.
func MountOverlay(o OverlayOptions) (*Server, error) {
	for _, p := range append(append([]string{}, o.Lower...), o.Upper, o.Work) {
		if strings.ContainsAny(p, ",:") && p != "" {
			return nil, fmt.Errorf("fuse-overlayfs layer path %q contains ',' or ':'", p)
		}
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/fuse: %w (FUSE must be usable by ordinary users: "+
			"the fuse module loaded and /dev/fuse mode 0666)", err)
	}
	defer dev.Close()
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions", dev.Fd(), o.UID, o.GID)
	if err := unix.Mount("fuse-overlayfs", o.Target, "fuse.fuse-overlayfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return nil, fmt.Errorf("mounting FUSE on %s: %w", o.Target, err)
	}
	opts := "lowerdir=" + strings.Join(o.Lower, ":")
	if o.Upper != "" { // none: a read-only overlay
		opts += ",upperdir=" + o.Upper + ",workdir=" + o.Work
	}
	opts += ",squash_to_uid=" + strconv.Itoa(o.UID) + ",squash_to_gid=" + strconv.Itoa(o.GID)
	argv := []string{o.Binary, "-f", "-o", opts, "/dev/fd/3"}
	// In a copy of the caller's mount namespace: pivot_root moves the root
	// of every process of the namespace that shares the old one;
	// fuse-overlayfs would then find itself serving its own root, and any
	// path it resolves (it calls lgetxattr on paths) would wait on itself
	// forever. In its own namespace it keeps the staging view it was
	// started in.
	s, err := start(o.Fork, argv, []*os.File{dev}, unix.CLONE_NEWNS)
	if err != nil {
		_ = unix.Unmount(o.Target, unix.MNT_DETACH)
		return nil, err
	}
	return s, nil
}
