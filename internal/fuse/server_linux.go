package fuse

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/reap"
)

// Forker forks and executes a program from the caller's locked thread
// (whose parent-death signal the child gets), serialised with the caller's
// reaping: reap.Reaper is one.
type Forker interface {
	ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error)
}

// ServerCaps is the capability every FUSE server holds, as an ambient one
// (and the only one, for a user other than root), so that the payload, which
// has none, cannot ptrace it or open its /proc/PID/mem: the kernel allows
// that only to a process whose capabilities include all of the target's
// permitted ones. CAP_WAKE_ALARM is checked by the kernel in the initial user
// namespace only (alarm timers), so inside the container's it grants
// nothing. A stage re-executed by a non-root user must hold it as an ambient
// capability itself, to pass it on.
var ServerCaps = []uintptr{unix.CAP_WAKE_ALARM}

// serverEnv is the FUSE servers' whole environment. GLIBC_TUNABLES keeps
// glibc's malloc from serving each request's buffer (a data block, a 128 KiB
// read reply: above its default 128 KiB mmap threshold) with a fresh mmap and
// returning it with munmap: every such buffer then costs a page fault per
// page on every request. From the heap, the pages are reused. Measured by
// hand (busybox from a fresh squashfuse_ll mount, gzip): the first exec 34.5
// → 27.7 ms, 509 → 202 page faults in squashfuse_ll. Other C libraries
// ignore the variable.
var serverEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=33554432",
}

// serverBlocked are the signals a FUSE server never sees: those that batch
// systems and terminals send to every process of a job step or process
// group.
var serverBlocked = []syscall.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGPIPE,
}

// Server is a running FUSE server process (squashfuse, fuse-overlayfs)
// serving one mount. Its owner reports the exits it reaps (Exited), so that
// the server's pid is never signalled once it may have been reused.
type Server struct {
	// Pid is the server's process id.
	Pid int
	// Binary is the program that serves the mount.
	Binary string
	// Mount is the detached mount the server serves when Mount was given
	// no Target: attach it with Attach. Nil otherwise, and after Attach.
	Mount *os.File

	mu     sync.Mutex
	stderr bytes.Buffer

	reaped bool               // its exit has been seen (by its owner's goroutine)
	status syscall.WaitStatus // how it ended, once reaped
}

// start forks a FUSE server (argv) through fork with stdin from /dev/null,
// stdout and stderr to a pipe that the returned Server collects (Stderr),
// files as fds 3, 4, …, parent-death SIGKILL, serverBlocked blocked,
// serverEnv, ServerCaps, and cloneflags.
//
// The blocked mask survives fork and exec (libfuse leaves it alone), so that
// `scancel -s USR1` or a SIGTERM to the whole step cannot take the mount
// away from a payload that is still running (or handling that very signal):
// the owner ends the server with SIGKILL (Stop); its parent-death signal is
// SIGKILL too.
func start(fork Forker, argv []string, files []*os.File, cloneflags uintptr) (*Server, error) {
	return startWith(fork, argv, files, startOpts{cloneflags: cloneflags, blocked: serverBlocked,
		pdeathsig: syscall.SIGKILL, caps: ServerCaps})
}

// startOpts are how start runs a server: see start; fuse2fs gets other
// ones (fuse2fs_linux.go).
type startOpts struct {
	cloneflags uintptr
	blocked    []syscall.Signal
	pdeathsig  syscall.Signal
	caps       []uintptr
	setsid     bool
	// exactMask gives the server exactly the blocked signals, not those
	// and the forking thread's (which blocks the forwarded ones while the
	// stage sets up).
	exactMask bool
	// exe, when set, is the program to execute in place of argv[0]'s path
	// (a /proc/self/fd path: see Squashfuse).
	exe string
}

// startWith is start with the given options.
func startWith(fork Forker, argv []string, files []*os.File, so startOpts) (*Server, error) {
	null, err := os.Open("/dev/null")
	if err != nil {
		return nil, fmt.Errorf("opening /dev/null: %w", err)
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating pipe for %s: %w", argv[0], err)
	}
	defer pw.Close()
	fds := []uintptr{null.Fd(), pw.Fd(), pw.Fd()}
	for _, f := range files {
		fds = append(fds, f.Fd())
	}
	var block, old unix.Sigset_t
	for _, s := range so.blocked {
		block.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
	}
	how := unix.SIG_BLOCK
	if so.exactMask {
		how = unix.SIG_SETMASK
	}
	if err := unix.PthreadSigmask(how, &block, &old); err != nil {
		pr.Close()
		return nil, fmt.Errorf("blocking signals for the FUSE server: %w", err)
	}
	exe := argv[0]
	if so.exe != "" {
		exe = so.exe
	}
	pid, err := fork.ForkExec(exe, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   serverEnv,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Pdeathsig: so.pdeathsig, Cloneflags: so.cloneflags, AmbientCaps: so.caps, Setsid: so.setsid},
	})
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	s := &Server{Pid: pid, Binary: argv[0]}
	go s.drain(pr)
	return s, nil
}

// Stderr returns what the server printed so far (for error messages).
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
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

// Exited tells the server that its owner reaped ev, and reports whether ev
// is this server's exit. A nil Server has no exit.
func (s *Server) Exited(ev reap.Exit) bool {
	if !s.Live() || ev.Pid != s.Pid {
		return false
	}
	s.reaped, s.status = true, ev.Status
	return true
}

// Live reports whether the server is not yet reaped: while it is, its pid
// is still its own. A nil Server is not live.
func (s *Server) Live() bool { return s != nil && s.Pid > 0 && !s.reaped }

// LivePid is the server's pid while it is live, -1 otherwise (a pid no
// process has).
func (s *Server) LivePid() int {
	if !s.Live() {
		return -1
	}
	return s.Pid
}

// Status is how the server ended, once reaped.
func (s *Server) Status() syscall.WaitStatus { return s.status }

// Stop kills the server (SIGKILL) unless it has been reaped: its pid may
// belong to someone else by then. A nil Server does nothing.
func (s *Server) Stop() {
	if s.Live() {
		_ = syscall.Kill(s.Pid, syscall.SIGKILL)
	}
}

// Wait waits up to d for the server to be reaped, reading its owner's exit
// reports from exits (and discarding the others'). A nil Server, or one
// reaped already, returns at once.
func (s *Server) Wait(exits <-chan reap.Exit, d time.Duration) {
	if !s.Live() {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-exits:
			if s.Exited(ev) {
				return
			}
		case <-t.C:
			return
		}
	}
}
