package container

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/jobenv"
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
	if os.Getenv(jobenv.SlurmJob) == "" {
		if v := jobenv.Unwatched(os.Getenv); v != "" {
			return -1, false, v + " is set, and launch cannot watch that batch system's job end"
		}
		return -1, true, ""
	}
	pid, _, ok := jobenv.StepAncestor(int(proc.Fd()), os.Getppid())
	if !ok {
		return -1, false, "no slurmstepd among this launch's ancestors, whose end would end it"
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return -1, false, fmt.Sprintf("watching slurmstepd pid %d: %v", pid, err)
	}
	return fd, true, ""
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
