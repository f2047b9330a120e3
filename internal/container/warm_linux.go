package container

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/runspec"
)

// A warm mount: the holder of a shared image mount (share_linux.go) whose
// own payload is done keeps the mount, its FUSE server and the page cache
// for a window (launch.conf images.linger, --linger) after the last launch
// using it, so that the next launch of the image in the same kill domain
// joins it instead of mounting and decompressing afresh. The stage that
// holds is its own owner once its launcher has exited: it ends itself when
// the window passes, on a terminating signal while no launch uses the
// mount, when its FUSE server dies, and with its Slurm job step (below);
// SIGKILL ends it at any time (docs/process-model.md).

// lingerOf is the warm window of a launch: --linger, else images.linger.
func lingerOf(s *runspec.Spec, conf *config.Config) (time.Duration, error) {
	if s.Linger == "" {
		return config.ParseLinger(conf.Images.Linger) // checked when the file was read
	}
	d, err := config.ParseLinger(s.Linger)
	if err != nil {
		return 0, fmt.Errorf("--linger: %w", err)
	}
	return d, nil
}

// otherJobVars are the job variables of the batch systems whose job end a
// holder cannot watch: under them no mount is kept warm (a holder must not
// outlive the job that started it).
var otherJobVars = []string{"PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID", "JOB_ID"}

// warmBound decides, as the payload is done and before the launcher exits,
// whether a holder's mount may be kept warm, and returns what ends the
// window early besides the timer: under Slurm, a pidfd of the job step's
// slurmstepd (found among this process's ancestors, through the host's
// /proc, while its launcher still lives), which reads when the step is
// over; -1 outside Slurm. ok is false when there is no window or the job's
// end cannot be watched; why says so, for -d.
func warmBound(window time.Duration, proc *os.File) (stepFd int, ok bool, why string) {
	if window <= 0 {
		return -1, false, ""
	}
	if os.Getenv("SLURM_JOB_ID") == "" {
		for _, v := range otherJobVars {
			if os.Getenv(v) != "" {
				return -1, false, v + " is set, and launch cannot watch that batch system's job end"
			}
		}
		return -1, true, ""
	}
	pid := ancestorNamed(proc, os.Getppid(), "slurmstepd")
	if pid <= 0 {
		return -1, false, "no slurmstepd among this launch's ancestors, whose end would end it"
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return -1, false, fmt.Sprintf("watching slurmstepd pid %d: %v", pid, err)
	}
	return fd, true, ""
}

// ancestorNamed walks up from pid (at most 32 generations) through
// /proc/PID/stat and returns the first process whose command name is comm,
// or 0.
func ancestorNamed(proc *os.File, pid int, comm string) int {
	for i := 0; i < 32 && pid > 1; i++ {
		name, ppid, ok := statOf(proc, pid)
		if !ok {
			return 0
		}
		if name == comm {
			return pid
		}
		pid = ppid
	}
	return 0
}

// statOf reads the command name and parent of pid from /proc/PID/stat
// (relative to the host's /proc, opened before the pivot).
func statOf(proc *os.File, pid int) (comm string, ppid int, ok bool) {
	fd, err := unix.Openat(int(proc.Fd()), strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", 0, false
	}
	defer unix.Close(fd)
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return parseStat(buf[:n])
}

// parseStat takes the command name and parent out of a /proc/PID/stat
// line: "pid (comm) state ppid …", where comm may hold spaces and
// parentheses.
func parseStat(b []byte) (comm string, ppid int, ok bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	var state byte
	if _, err := fmt.Sscanf(string(b[end+1:]), " %c %d", &state, &ppid); err != nil {
		return "", 0, false
	}
	return string(b[open+1 : end]), ppid, true
}

// lingerQuit returns a channel closed when an idle warm mount should end
// before its window: stepFd (when not -1) reads (the Slurm step is over).
// Terminating signals and the FUSE server's death are handled by linger.
func lingerQuit(stepFd int) <-chan struct{} {
	quit := make(chan struct{})
	if stepFd < 0 {
		return quit
	}
	go func() {
		defer unix.Close(stepFd)
		fds := []unix.PollFd{{Fd: int32(stepFd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err == syscall.EINTR {
				continue
			}
			close(quit)
			return
		}
	}()
	return quit
}
