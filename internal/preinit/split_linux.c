//go:build cgo

// What the parts of the constructor share (preinit_linux.h): the record the
// Go side reads, the signals passed on, and the fork into a waiting parent
// (the launcher) and a child that goes on (the stage).

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preinit_linux.h"

// What the Go side reads (preinit_linux.go). Written only here, before the
// Go runtime starts.
int launch_preinit_state;          // one of the PREINIT_ values
int launch_preinit_errno;          // errno of the failed step
const char *launch_preinit_step;   // which step failed
int launch_preinit_fd = -1;        // the child's end of the socket
unsigned long long launch_preinit_ignored; // bit N-1: signal N was ignored at start

const int preinit_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGALRM};
const size_t preinit_nforwarded = sizeof(preinit_forwarded) / sizeof(preinit_forwarded[0]);
#define forwarded preinit_forwarded
#define NFORWARDED preinit_nforwarded

static pid_t child_pid;

int preinit_ignored(int sig) { return (launch_preinit_ignored >> (sig - 1)) & 1; }

// preinit_timeline writes a LAUNCH_TIMELINE milestone (internal/timeline's format).
void preinit_timeline(int on, const char *role, const char *event) {
	if (!on)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char line[160];
	int n = snprintf(line, sizeof line, "launch-timeline: %lld %d %s %s\n",
	                 (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, (int)getpid(), role, event);
	if (n > 0 && n < (int)sizeof line)
		(void)!write(2, line, (size_t)n);
}

// preinit_from_terminal reports whether our process group is the terminal's
// foreground group: then the terminal has sent INT or QUIT to the child
// too, and passing it on would deliver it twice.
int preinit_from_terminal(void) {
	pid_t pgrp = getpgrp();
	for (int fd = 0; fd < 3; fd++) {
		pid_t fg;
		if (ioctl(fd, TIOCGPGRP, &fg) == 0)
			return fg == pgrp;
	}
	return 0;
}

static void forward(int sig) {
	int saved = errno;
	if ((sig == SIGINT || sig == SIGQUIT) && preinit_from_terminal()) {
		errno = saved;
		return;
	}
	kill(child_pid, sig);
	errno = saved;
}

// parent waits for the child's report (one byte: the exit status) or its
// end, passing signals on meanwhile, and exits. It never returns.
static void parent(int sock, const sigset_t *old, int tl) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	// A signal the caller ignores stays ignored, here as for the payload.
	for (size_t i = 0; i < NFORWARDED; i++)
		if (!preinit_ignored(forwarded[i]))
			sigaction(forwarded[i], &sa, NULL);
	// A caller that ignores SIGCHLD (inherited across exec) would leave no
	// child to reap: waitpid would fail and the status would be lost.
	sa.sa_handler = SIG_DFL;
	sa.sa_flags = 0;
	sigaction(SIGCHLD, &sa, NULL);
	// The caller's mask, but never blocking a signal that is passed on.
	sigset_t mask = *old;
	for (size_t i = 0; i < NFORWARDED; i++)
		sigdelset(&mask, forwarded[i]);
	sigprocmask(SIG_SETMASK, &mask, NULL);

	unsigned char code;
	for (;;) {
		ssize_t n = read(sock, &code, 1);
		if (n == 1) {
			preinit_timeline(tl, "launcher", "status-received");
			_exit(code);
		}
		if (n == 0 || errno != EINTR)
			break;
	}
	// The child has closed the socket: nothing is passed on any more, and
	// once it is reaped its pid may belong to someone else.
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	int status;
	while (waitpid(child_pid, &status, 0) < 0) {
		if (errno != EINTR)
			_exit(255);
	}
	preinit_timeline(tl, "launcher", "stage-reaped");
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(255);
}

void preinit_fail(int state, const char *step) {
	launch_preinit_state = state;
	launch_preinit_errno = errno;
	launch_preinit_step = step;
}

// preinit_split forks: the parent becomes the waiter (parent, which never
// returns), the child returns 0 with launch_preinit_fd set. -1: the fork
// failed (the state says so) and this process goes on alone. The parent
// first closes close_fds. With keep_blocked, the child returns with every
// signal still blocked and the caller's mask in *keep_blocked.
int preinit_split(int tl, const int *close_fds, int n, sigset_t *keep_blocked) {
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		preinit_fail(PREINIT_FAILED, "socketpair");
		return -1;
	}
	// Signals stay blocked until the parent's handlers are in place, so
	// that none sent in between is lost or kills the parent alone.
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid < 0) {
		preinit_fail(PREINIT_FAILED, "fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid > 0) {
		child_pid = pid;
		close(sv[1]);
		for (int i = 0; i < n; i++)
			close(close_fds[i]);
		preinit_timeline(tl, "launcher", "forked");
		parent(sv[0], &old, tl);
	}
	close(sv[0]);
	if (keep_blocked != NULL)
		*keep_blocked = old;
	else
		sigprocmask(SIG_SETMASK, &old, NULL);
	launch_preinit_fd = sv[1];
	return 0;
}
