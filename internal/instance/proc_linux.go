package instance

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/jobenv"
)

// Proc is a process held by a pidfd: it can be signalled and waited for
// without the risk of its pid naming another process.
type Proc struct {
	Pid int
	fd  int
}

// OpenProc opens the process pid, which must have started at startTime
// (clock ticks since boot, /proc/PID/stat field 22) and run as uid: a pid
// recycled since is ErrGone, as is a process that has exited. The pidfd is
// opened first and the start time read after, so a process that matches
// is the one the pidfd holds.
func OpenProc(pid int, startTime uint64, uid int) (*Proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, ErrGone
	}
	if err != nil {
		return nil, fmt.Errorf("opening process %d: %w", pid, err)
	}
	p := &Proc{Pid: pid, fd: fd}
	st, owner, err := procInfo(pid)
	if err != nil || st != startTime {
		p.Close()
		return nil, ErrGone
	}
	if owner != uid {
		p.Close()
		return nil, fmt.Errorf("process %d runs as uid %d, not as you (uid %d): not your instance", pid, owner, uid)
	}
	if !p.Alive() {
		p.Close()
		return nil, ErrGone
	}
	return p, nil
}

// OpenAnyProc is OpenProc for a process of any user (a batch system's
// daemon).
func OpenAnyProc(pid int, startTime uint64) (*Proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, ErrGone
	}
	p := &Proc{Pid: pid, fd: fd}
	if st, _, err := procInfo(pid); err != nil || st != startTime {
		p.Close()
		return nil, ErrGone
	}
	return p, nil
}

// JobAnchor finds, when this process runs in a Slurm job (SLURM_JOB_ID
// set), the job step's slurmstepd among its ancestors: its pid and start
// time. ok is false outside a job, or when there is none.
func JobAnchor(getenv func(string) string) (pid int, start uint64, ok bool) {
	if getenv(jobenv.SlurmJob) == "" {
		return 0, 0, false
	}
	proc, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	defer unix.Close(proc)
	return jobenv.StepAncestor(proc, os.Getppid())
}

// ProcFromFD takes a pidfd received from elsewhere (the instance's
// init sends its own) and finds its pid in this PID namespace and its
// start time.
func ProcFromFD(fd int) (*Proc, uint64, error) {
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the pidfd's information: %w", err)
	}
	pid := -1
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Pid:"); ok {
			pid, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, 0, fmt.Errorf("the pidfd's pid %q: %w", v, err)
			}
		}
	}
	if pid <= 0 {
		return nil, 0, errors.New("the descriptor received is not a live process's pidfd")
	}
	p := &Proc{Pid: pid, fd: fd}
	st, _, err := procInfo(pid)
	if err != nil || !p.Alive() {
		return nil, 0, fmt.Errorf("process %d: %w", pid, ErrGone)
	}
	return p, st, nil
}

// Self is this process's pid and start time.
func Self() (int, uint64, error) {
	pid := os.Getpid()
	st, _, err := procInfo(pid)
	return pid, st, err
}

// procInfo reads pid's start time and real uid from /proc (bounded).
func procInfo(pid int) (start uint64, uid int, err error) {
	base := "/proc/" + strconv.Itoa(pid)
	proc, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("opening /proc: %w", err)
	}
	st, err := jobenv.ReadStat(proc, pid)
	unix.Close(proc)
	if err != nil {
		return 0, 0, err
	}
	start = st.Start
	status, err := readSmall(base + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			ids := strings.Fields(v)
			if len(ids) > 0 {
				uid, err = strconv.Atoi(ids[0])
				return start, uid, err
			}
		}
	}
	return 0, 0, fmt.Errorf("%s/status: no Uid line", base)
}

// readSmall reads at most 64 KiB of a /proc file.
func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := readFull(f, buf)
	return string(buf[:n]), err
}

// FD is the pidfd (owned by p).
func (p *Proc) FD() int { return p.fd }

// Close closes the pidfd.
func (p *Proc) Close() {
	if p != nil && p.fd >= 0 {
		_ = unix.Close(p.fd)
		p.fd = -1
	}
}

// Alive reports whether the process has not exited yet.
func (p *Proc) Alive() bool {
	return unix.PidfdSendSignal(p.fd, 0, nil, 0) == nil
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig unix.Signal) error {
	if err := unix.PidfdSendSignal(p.fd, sig, nil, 0); err != nil {
		return fmt.Errorf("sending %v to process %d: %w", sig, p.Pid, err)
	}
	return nil
}

// Wait waits up to d for the process to exit, and reports whether it
// has.
func (p *Proc) Wait(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if n > 0 || err != nil {
			return true
		}
		if left == 0 {
			return !p.Alive()
		}
	}
}
