// Package reap owns the children of the container stage as processes: it
// forks them from the caller's locked thread, serialised with reaping, so no
// exit is reported before the caller knows the pid; it reaps every child (the
// payload, the FUSE servers and, as child subreaper, every orphan of the
// payload) and reports each exit; it lists a process's descendants from
// /proc; and it holds the one rule for a shell-style exit status (128+N for
// signal N).
//
// It must not decide what to start or when to kill: that is the stage's
// supervisor (internal/container) and, for the FUSE servers, internal/fuse.
package reap

import (
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is one reaped child.
type Exit struct {
	Pid    int
	Status syscall.WaitStatus
}

// Reaper reaps every child of this process and reports each exit on Exits.
// Starting a child and reaping are serialised so no exit can be reported
// before the caller knows the child's pid.
type Reaper struct {
	mu    sync.Mutex
	exits chan Exit
}

// New starts reaping (on SIGCHLD) in a goroutine of its own.
func New() *Reaper {
	r := &Reaper{exits: make(chan Exit, 1024)}
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	go r.loop(chld)
	return r
}

// Exits reports every child reaped, in order.
func (r *Reaper) Exits() <-chan Exit { return r.exits }

func (r *Reaper) loop(chld <-chan os.Signal) {
	for range chld {
		var evs []Exit
		r.mu.Lock()
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			evs = append(evs, Exit{Pid: pid, Status: ws})
		}
		r.mu.Unlock()
		for _, ev := range evs {
			r.exits <- ev
		}
	}
}

// ForkExec forks and executes argv0 with attr, from the calling (locked)
// thread, which the child's parent-death signal belongs to.
func (r *Reaper) ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return syscall.ForkExec(argv0, argv, attr)
}

// StopStarting makes every later ForkExec (and reaping) wait for ever: for
// a process about to kill its children and exit, so that none is started
// while the others are killed. A start under way is waited for up to d: one
// that does not return (an exec that waits on a FUSE mount) must not keep
// the caller from killing what there is; it returns false then.
func (r *Reaper) StopStarting(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !r.mu.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Status maps a finished process to a shell-style exit status: its own, or
// 128+N when it died of signal N.
func Status(ws syscall.WaitStatus) int {
	switch {
	case ws.Signaled():
		return Signalled(ws.Signal())
	case ws.Exited():
		return ws.ExitStatus()
	}
	return 255
}

// Signalled is the shell-style exit status of a process killed by s.
func Signalled(s syscall.Signal) int { return 128 + int(s) }

// Describe says how a process ended, for messages.
func Describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// HasChildren reports whether this process has a child, exited or not
// (waitid with WNOWAIT: nothing is reaped). A child subreaper without one
// has no descendant either, since orphans are reparented to it: that saves
// Descendants' walk of a task's /proc files (one per thread) when the
// payload left nothing behind.
func HasChildren() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err != unix.ECHILD
}

// Descendants lists every descendant of pid, children before grandchildren,
// reading the host's /proc through proc (opened before the pivot, so it
// works whatever the container mounts on /proc).
func Descendants(proc *os.File, pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 100000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children(proc, p) {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// children lists the direct children of pid.
func children(proc *os.File, pid int) []int {
	base := strconv.Itoa(pid) + "/task"
	tasks, err := readDirAt(proc, base)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		data, err := readFileAt(proc, base+"/"+t+"/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func readDirAt(dir *os.File, name string) ([]string, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Readdirnames(-1)
}

func readFileAt(dir *os.File, name string) ([]byte, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(f)
}
