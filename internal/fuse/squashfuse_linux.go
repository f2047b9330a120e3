// Package fuse mounts SquashFS images with squashfuse inside the container's
// namespaces and owns the FUSE server process: it is started as a child of
// the container stage, dies with it (parent-death signal), and is never left
// running after the container is gone.
package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Server is a running squashfuse process serving one mount.
type Server struct {
	// Pid is the server's process id.
	Pid int
	// Binary is the squashfuse program that serves the mount.
	Binary string

	mu     sync.Mutex
	stderr bytes.Buffer
}

// Stderr returns what the server printed so far (for error messages).
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// FindSquashfuse returns the first usable squashfuse binary: each candidate
// is an absolute path or a name looked up in PATH.
func FindSquashfuse(candidates []string) (string, error) {
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no squashfuse program found (looked for %s); install the squashfuse package or set tools.squashfuse in launch.conf", strings.Join(candidates, ", "))
}

// MountOptions describe one SquashFS mount.
type MountOptions struct {
	// Image is an open file holding the SquashFS (a SIF or a bare squashfs).
	Image *os.File
	// Offset is where the SquashFS starts in Image.
	Offset int64
	// Target is the mount point (an existing directory).
	Target string
	// UID and GID own the mount (the calling user).
	UID, GID int
	// Binary is the squashfuse program to run.
	Binary string
	// Start forks the server; the caller supplies it so the server is
	// created on the thread and under the reaper it controls. It must
	// start argv[0] with the given extra files as fds 3, 4, … and return
	// the pid, and must arrange that stderr goes to the given pipe.
	Start func(argv []string, files []*os.File, stderr *os.File) (int, error)
}

// Mount opens /dev/fuse, mounts it on o.Target (read-only, nosuid, nodev),
// and starts squashfuse serving it through the already-mounted descriptor
// (libfuse's /dev/fd/N convention), so no polling for the mount is needed:
// the first access simply waits for the server.
func Mount(o MountOptions) (*Server, error) {
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/fuse: %w (FUSE must be usable by ordinary users: "+
			"the fuse module loaded and /dev/fuse mode 0666)", err)
	}
	defer dev.Close()
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions",
		dev.Fd(), o.UID, o.GID)
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RDONLY)
	if err := unix.Mount("squashfuse", o.Target, "fuse.squashfuse", flags, data); err != nil {
		return nil, fmt.Errorf("mounting FUSE on %s: %w", o.Target, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating pipe for squashfuse: %w", err)
	}
	// Inside the server: fd 3 = image, fd 4 = /dev/fuse.
	argv := []string{o.Binary, "-f", "-o", "offset=" + strconv.FormatInt(o.Offset, 10), "/dev/fd/3", "/dev/fd/4"}
	pid, err := o.Start(argv, []*os.File{o.Image, dev}, pw)
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

// drain keeps reading the server's stderr so it never blocks on it.
func (s *Server) drain(r *os.File) {
	defer r.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.mu.Lock()
			if s.stderr.Len() < 64<<10 {
				s.stderr.Write(buf[:n])
			}
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Stop asks the server to exit.
func (s *Server) Stop() {
	if s == nil || s.Pid <= 0 {
		return
	}
	_ = syscall.Kill(s.Pid, syscall.SIGKILL)
}

// IsNotConnected reports whether err means the FUSE server is gone.
func IsNotConnected(err error) bool { return errors.Is(err, unix.ENOTCONN) }
