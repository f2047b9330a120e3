package container

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/preinit"
)

// forwarded are the signals the launcher and the stage pass on to the
// payload: what users, batch systems and MPI launchers send.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT, syscall.SIGALRM,
}

// keepIgnored leaves ignored in this process the signals its caller ignored
// (nohup, `cmd &` in a script, `trap "" TERM`), so that what it starts — a
// re-executed stage, the payload — inherits them ignored, as it would from
// the caller directly; the Go runtime would otherwise have the payload
// start with the default action. Signals the Go runtime itself needs
// (SIGCHLD for reaping, SIGURG for preemption, the synchronous faults, the
// C library's 32 and 33) are left to it. It returns the forwarded signals
// that remain to be caught and passed on.
func keepIgnored() []os.Signal {
	ignored := map[syscall.Signal]bool{}
	for _, s := range preinit.IgnoredAtStart() {
		switch s {
		case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPROF, syscall.SIGSEGV, syscall.SIGBUS,
			syscall.SIGFPE, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGSYS, 32, 33:
			continue
		}
		ignored[s] = true
		signal.Ignore(s)
	}
	var catch []os.Signal
	for _, s := range forwarded {
		if !ignored[s.(syscall.Signal)] {
			catch = append(catch, s)
		}
	}
	return catch
}

// notify is signal.Notify for exactly sigs (signal.Notify with none would
// catch every signal).
func notify(c chan<- os.Signal, sigs []os.Signal) {
	if len(sigs) > 0 {
		signal.Notify(c, sigs...)
	}
}

// fromTerminal reports whether s is a keyboard signal (INT, QUIT) that the
// terminal has already delivered to our whole foreground process group,
// payload included; forwarding it again would deliver it twice.
func fromTerminal(s os.Signal) bool {
	if s != syscall.SIGINT && s != syscall.SIGQUIT {
		return false
	}
	pgrp := syscall.Getpgrp()
	for _, fd := range []int{0, 1, 2} {
		fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err == nil {
			return fg == pgrp
		}
	}
	return false
}

// watchLauncher closes gone when the launcher's end of the pipe closes,
// which happens only when the launcher process is gone.
func watchLauncher(pipe *os.File, gone chan<- struct{}) {
	buf := make([]byte, 64)
	for {
		if _, err := pipe.Read(buf); err != nil {
			close(gone)
			return
		}
	}
}
