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
	// Start forks the server, as in MountOptions.
	Start func(argv []string, files []*os.File, stderr *os.File) (int, error)
}

// MountOverlay mounts a FUSE filesystem on o.Target and starts
// fuse-overlayfs serving it through the already-mounted /dev/fuse descriptor
// (fd 3 in the server, named /dev/fd/3), as Mount does for squashfuse. The
// first access to Target waits until the server has opened its layers.
func MountOverlay(o OverlayOptions) (*Server, error) {
	for _, p := range append(append([]string{}, o.Lower...), o.Upper, o.Work) {
		if strings.ContainsAny(p, ",:") {
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
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = unix.Unmount(o.Target, unix.MNT_DETACH)
		return nil, fmt.Errorf("creating pipe for fuse-overlayfs: %w", err)
	}
	opts := "lowerdir=" + strings.Join(o.Lower, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work +
		",squash_to_uid=" + strconv.Itoa(o.UID) + ",squash_to_gid=" + strconv.Itoa(o.GID)
	argv := []string{o.Binary, "-f", "-o", opts, "/dev/fd/3"}
	pid, err := o.Start(argv, []*os.File{dev}, pw)
	pw.Close()
	if err != nil {
		pr.Close()
		_ = unix.Unmount(o.Target, unix.MNT_DETACH)
		return nil, fmt.Errorf("starting %s: %w", o.Binary, err)
	}
	s := &Server{Pid: pid, Binary: o.Binary}
	go s.drain(pr)
	return s, nil
}
