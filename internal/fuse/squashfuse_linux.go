// Package fuse owns the FUSE mounts of the container and their server
// processes (squashfuse for the image, fuse-overlayfs for a writable layer),
// in the manner of charliecloud's ch_fuse.c: it mounts /dev/fuse (detached
// or on a mount point), starts the server on the mounted descriptor with the
// signals of a job step blocked, its own environment, parent-death SIGKILL,
// the capability that keeps it out of the payload's reach and its stderr
// captured (server_linux.go), and tracks it until it is reaped and stops it.
//
// It must not decide when a server starts or ends, nor reap: the stage
// (internal/container) calls it, forks through a Forker it supplies (its
// reaper, on its locked thread) and reports the exits it reaps (Exited).
package fuse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/helper"
)

// OwnServer is the name of launch's own SquashFS server (cmd/launch-squashfs),
// a helper program found next to launch (internal/helper) when it is named
// among the candidates.
const OwnServer = "launch-squashfs"

// Squashfuse is the program that serves SquashFS images.
type Squashfuse struct {
	// Binary is the program's path.
	Binary string
	// Fallback, for OwnServer, is the next usable candidate: OwnServer
	// execs it in its place for an image it cannot read (a compression it
	// does not decompress), with the same descriptors.
	Fallback string
	// exe holds OwnServer open (O_PATH, close-on-exec) from the moment it
	// was found: it is installed next to launch, which may lie below a
	// directory the stage covers later (the staging tmpfs on /tmp, where
	// the tests install it), and servers of overlay images start after
	// that. It is executed through /proc/self/fd (the kernel resolves the
	// path before it closes the descriptor).
	exe *os.File
}

// FindSquashfuse returns the first usable squashfuse program: each
// candidate is an absolute path, a name looked up in PATH, or OwnServer.
func FindSquashfuse(candidates []string) (Squashfuse, error) {
	var found Squashfuse
	for i, c := range candidates {
		p, err := lookSquashfuse(c)
		if err != nil {
			continue
		}
		found.Binary = p
		if c == OwnServer {
			exe, err := openExe(p)
			if err != nil {
				continue
			}
			found.exe = exe
			for _, next := range candidates[i+1:] {
				if fb, err := lookSquashfuse(next); err == nil && next != OwnServer {
					found.Fallback = fb
					break
				}
			}
		}
		return found, nil
	}
	return found, fmt.Errorf("no squashfuse program found (looked for %s); install the squashfuse package or set tools.squashfuse in launch.conf", strings.Join(candidates, ", "))
}

// exeFloor is the lowest descriptor number exe may have: above those a
// server gets (0–2, the image, /dev/fuse), so that in the child, where
// those are set up before the exec, /proc/self/fd/N is still the program.
const exeFloor = 10

// openExe opens the program p to execute it later (O_PATH, close-on-exec,
// at exeFloor or above).
func openExe(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	defer unix.Close(fd)
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, exeFloor)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	return os.NewFile(uintptr(high), p), nil
}

// lookSquashfuse finds one candidate.
func lookSquashfuse(c string) (string, error) {
	if c == OwnServer {
		return helper.Find(OwnServer)
	}
	return exec.LookPath(c)
}

// MountOptions describe one SquashFS mount.
type MountOptions struct {
	// Image is an open file holding the SquashFS (a SIF or a bare squashfs).
	Image *os.File
	// Offset is where the SquashFS starts in Image.
	Offset int64
	// Target is the mount point (an existing directory), or "" for a
	// detached mount (Server.Mount), made with fsopen(2) and fsmount(2),
	// that the caller attaches later with Server.Attach. A detached mount
	// needs no mount point, so the server can be started before anything
	// else is prepared, and starts up while the caller does other work.
	Target string
	// UID and GID own the mount (the calling user).
	UID, GID int
	// Program is the squashfuse program to run.
	Program Squashfuse
	// Fork forks the server; the caller supplies it so the server is
	// created on the thread and under the reaper it controls.
	Fork Forker
}

// ErrNoDetached wraps the reason a detached mount could not be made
// (fsopen(2) missing or refused, as by some seccomp profiles); the caller
// can mount on a Target instead.
var ErrNoDetached = errors.New("detached FUSE mount not available")

// Mount opens /dev/fuse, mounts it (read-only, nosuid, nodev) on o.Target
// or detached, and starts squashfuse serving it through the already-mounted
// descriptor (libfuse's /dev/fd/N convention), so no polling for the mount
// is needed: the first access simply waits for the server.
func Mount(o MountOptions) (*Server, error) {
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/fuse: %w (FUSE must be usable by ordinary users: "+
			"the fuse module loaded and /dev/fuse mode 0666)", err)
	}
	defer dev.Close()
	var mnt *os.File
	undo := func() { _ = unix.Unmount(o.Target, unix.MNT_DETACH) }
	if o.Target == "" {
		if mnt, err = mountDetached(dev, o); err != nil {
			return nil, err
		}
		undo = func() { mnt.Close() } // the last reference to a detached mount unmounts it
	} else {
		data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions",
			dev.Fd(), o.UID, o.GID)
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RDONLY)
		if err := unix.Mount("squashfuse", o.Target, "fuse.squashfuse", flags, data); err != nil {
			return nil, fmt.Errorf("mounting FUSE on %s: %w", o.Target, err)
		}
	}
	// Inside the server: fd 3 = image, fd 4 = /dev/fuse.
	argv := []string{o.Program.Binary, "-f", "-o", "offset=" + strconv.FormatInt(o.Offset, 10)}
	if o.Program.Fallback != "" {
		argv = append(argv, "--fallback", o.Program.Fallback)
	}
	argv = append(argv, "/dev/fd/3", "/dev/fd/4")
	so := startOpts{blocked: serverBlocked, pdeathsig: syscall.SIGKILL, caps: ServerCaps}
	if o.Program.exe != nil {
		so.exe = "/proc/self/fd/" + strconv.Itoa(int(o.Program.exe.Fd()))
	}
	s, err := startWith(o.Fork, argv, []*os.File{o.Image, dev}, so)
	if err != nil {
		undo()
		return nil, err
	}
	s.Mount = mnt
	return s, nil
}

// mountDetached makes a detached FUSE mount of dev with the options mount(2)
// would get, and returns its descriptor. Errors wrap ErrNoDetached.
func mountDetached(dev *os.File, o MountOptions) (*os.File, error) {
	fsfd, err := unix.Fsopen("fuse", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: fsopen: %w", ErrNoDetached, err)
	}
	defer unix.Close(fsfd)
	for _, kv := range [][2]string{
		{"source", "squashfuse"},
		{"subtype", "squashfuse"},
		{"fd", strconv.Itoa(int(dev.Fd()))},
		{"rootmode", "40000"},
		{"user_id", strconv.Itoa(o.UID)},
		{"group_id", strconv.Itoa(o.GID)},
	} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("%w: fsconfig %s=%s: %w", ErrNoDetached, kv[0], kv[1], err)
		}
	}
	for _, flag := range []string{"default_permissions", "ro"} {
		if err := unix.FsconfigSetFlag(fsfd, flag); err != nil {
			return nil, fmt.Errorf("%w: fsconfig %s: %w", ErrNoDetached, flag, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fmt.Errorf("%w: fsconfig create: %w", ErrNoDetached, err)
	}
	attr := unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return nil, fmt.Errorf("%w: fsmount: %w", ErrNoDetached, err)
	}
	return os.NewFile(uintptr(mfd), "squashfuse mount"), nil
}

// Attach moves the detached mount the server serves onto target (an
// existing directory). The first access to target waits for the server.
func (s *Server) Attach(target string) error {
	if s.Mount == nil {
		return errors.New("attaching the image mount: no detached mount")
	}
	err := unix.MoveMount(int(s.Mount.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("attaching the image mount on %s: %w", target, err)
	}
	s.Mount.Close()
	s.Mount = nil
	return nil
}

// IsNotConnected reports whether err means the FUSE server is gone.
func IsNotConnected(err error) bool { return errors.Is(err, unix.ENOTCONN) }
