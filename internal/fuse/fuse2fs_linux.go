package fuse

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
)

// FindFuse2fs returns the fuse2fs program named by name (a path, or a name
// looked up in PATH).
func FindFuse2fs(name string) (string, error) {
	if name == "" {
		name = "fuse2fs"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("fuse2fs program %q not found: an ext3 overlay image needs it (install the fuse2fs package)", name)
	}
	return p, nil
}

// Ext3Options describe one fuse2fs mount of an ext3 image.
type Ext3Options struct {
	// Image is the open image file (read-write unless ReadOnly).
	Image *os.File
	// Offset is where the filesystem starts in Image (a SIF partition).
	Offset int64
	// Target is the mount point (an existing directory, no ',' in it).
	Target string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Binary is the fuse2fs program.
	Binary string
	// Fork forks the server, as in MountOptions.
	Fork Forker
	// Timeout bounds the wait for the mount to appear.
	Timeout time.Duration
}

// ext3Blocked are the signals fuse2fs never sees: serverBlocked but
// SIGHUP, which is how it is asked to stop (see MountExt3).
var ext3Blocked = []syscall.Signal{
	syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGPIPE,
}

// ext3Caps are fuse2fs's capabilities: ServerCaps, and CAP_SYS_ADMIN (in
// the container's user namespace only), since fuse2fs, a libfuse 2
// program, mounts /dev/fuse itself and knows no mounted descriptor.
var ext3Caps = append([]uintptr{unix.CAP_SYS_ADMIN}, ServerCaps...)

// fuseSuperMagic is the f_type of a FUSE filesystem.
const fuseSuperMagic = 0x65735546

// MountExt3 starts fuse2fs serving the ext3 filesystem of o.Image (as
// /dev/fd/3: the image is never opened again by path) on o.Target, in a
// mount namespace of its own, and waits for the mount to show in the
// caller's (o.Target must be a shared mount point, or below one).
//
// Unlike the other servers, fuse2fs keeps data of its own (the block and
// inode bitmaps, the superblock) that it writes back only when it stops,
// and it keeps no journal: a SIGKILL would leave the image inconsistent.
// It stops by itself, writing everything back, when its filesystem is
// unmounted everywhere (libfuse's loop then ends): the caller arranges
// that (see internal/container, overlayimg_linux.go). It has no
// parent-death signal: the kernel sends that again each time a thread of
// a multi-threaded parent exits, and a second SIGHUP, arriving once libfuse
// has put the default action back as it tears down, kills fuse2fs half-way
// through writing the image. SIGHUP (Hangup) asks it to stop while its
// filesystem is still mounted (HangupReady says whether it would be
// handled). It runs in a session of its own, so no terminal sends it
// SIGHUP; batch systems send TERM, INT and the USR signals, which it has
// blocked.
func MountExt3(o Ext3Options) (*Server, error) {
	if bytes.ContainsAny([]byte(o.Target), ",") {
		return nil, fmt.Errorf("fuse2fs mount point %q contains ','", o.Target)
	}
	// fuse2fs's own defaults (attr_timeout=0 among them: with longer
	// attribute and entry timeouts, a full image could not even delete a
	// file through fuse-overlayfs, which then failed with ENOSPC).
	opts := "fsname=launch-overlay"
	if o.Offset > 0 {
		opts += ",offset=" + strconv.FormatInt(o.Offset, 10)
	}
	if o.ReadOnly {
		opts += ",ro"
	}
	argv := []string{o.Binary, "/dev/fd/3", o.Target, "-f", "-o", opts}
	s, err := startWith(o.Fork, argv, []*os.File{o.Image}, startOpts{blocked: ext3Blocked,
		caps: ext3Caps, setsid: true, exactMask: true, cloneflags: unix.CLONE_NEWNS})
	if err != nil {
		return nil, err
	}
	if err := s.waitMounted(o.Target, o.Timeout); err != nil {
		s.Hangup()
		return s, err
	}
	return s, nil
}

// waitMounted waits until target is a FUSE mount, or the server is gone.
func (s *Server) waitMounted(target string, d time.Duration) error {
	if d <= 0 {
		d = 30 * time.Second
	}
	deadline := time.Now().Add(d)
	for {
		var st unix.Statfs_t
		if unix.Statfs(target, &st) == nil && st.Type == fuseSuperMagic {
			return nil
		}
		if !s.Running() {
			time.Sleep(20 * time.Millisecond) // the drain goroutine reads on
			detail := msg.OneLine(s.Stderr())
			if detail == "" {
				detail = "exited before mounting it"
			}
			return fmt.Errorf("%s: %s", s.Binary, detail)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not mount %s within %v", s.Binary, target, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Running reports whether the server's process still runs (not a zombie,
// not reaped): its owner reaps it, so this reads its state.
func (s *Server) Running() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.Pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// HangupReady reports whether the server, read through proc (a /proc
// directory), has a SIGHUP handler in place: libfuse's, which ends its
// loop, and is removed as it tears down. False when unknown.
func (s *Server) HangupReady(proc *os.File) bool {
	if !s.Live() || proc == nil {
		return false
	}
	fd, err := unix.Openat(int(proc.Fd()), strconv.Itoa(s.Pid)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), "status")
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := f.Read(b)
	for _, l := range bytes.Split(b[:n], []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("SigCgt:")); ok {
			m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err == nil && m&1 != 0 // bit 0: SIGHUP
		}
	}
	return false
}

// Hangup asks the server to stop (SIGHUP) unless it has been reaped: for
// fuse2fs, to flush its filesystem, unmount and exit. A nil Server does
// nothing.
func (s *Server) Hangup() {
	if s.Live() {
		_ = syscall.Kill(s.Pid, syscall.SIGHUP)
	}
}
