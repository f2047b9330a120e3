package container

import (
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitEvent is one reaped child.
type exitEvent struct {
	pid    int
	status syscall.WaitStatus
}

// reaper reaps every child of the stage (the payload, the FUSE server and,
// as child subreaper, every orphan of the payload) and reports each exit.
// Starting a child and reaping are serialised so no exit can be reported
// before the caller knows the child's pid.
type reaper struct {
	mu    sync.Mutex
	exits chan exitEvent
}

func newReaper() *reaper {
	r := &reaper{exits: make(chan exitEvent, 1024)}
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	go r.loop(chld)
	return r
}

func (r *reaper) loop(chld <-chan os.Signal) {
	for range chld {
		var evs []exitEvent
		r.mu.Lock()
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			evs = append(evs, exitEvent{pid: pid, status: ws})
		}
		r.mu.Unlock()
		for _, ev := range evs {
			r.exits <- ev
		}
	}
}

// start forks and executes argv0 with attr, from the calling (locked) thread.
func (r *reaper) start(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return syscall.ForkExec(argv0, argv, attr)
}

// descendants lists every descendant of pid, children before grandchildren,
// reading the host's /proc through proc (opened before the pivot, so it
// works whatever the container mounts on /proc).
func descendants(proc *os.File, pid int) []int {
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
