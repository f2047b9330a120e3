//go:build cgo

// The stage of a launch that joins a warm container (see warm_linux.c): in
// the holder's namespaces, it starts the payload without privileges, passes
// signals on, kills what the payload leaves behind and reports its status
// to the launcher. Plain system calls, no Go runtime.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preinit_linux.h"
#include "warm_linux.h"

// How long the payload may outlive the holder before the user is warned
// (the Go stage's serverWarnDelay).
#define WARM_LOST_WARN_MS 500

static long long now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *s) {
	if (s[0] != '\0')
		(void)!write(2, s, strlen(s));
}

// drop_privileges leaves the payload no capability at its execve (the
// stage holds all of them in the namespace, from setns): an empty bounding,
// ambient and inheritable set, and no_new_privs. Its uid is not 0 there, so
// execve clears the permitted and effective sets.
// It returns -1 (errno set) when any step fails: the payload must not run.
static int drop_privileges(void) {
	for (int c = 0; c <= 63; c++) {
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL && c > 0)
				break; // past the last capability
			return -1;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -1;
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].inheritable = d[1].inheritable = 0;
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

// run_payload is the payload's side of the fork: it never returns.
static void run_payload(const struct warm *w, const sigset_t *callers, pid_t stage) {
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != stage)
		_exit(137);
	if (preinit_ignored(SIGCHLD))
		signal(SIGCHLD, SIG_IGN);
	char line[PATH_MAX + 256];
	if (chdir(w->cwd) < 0) {
		int k = snprintf(line, sizeof line, "FATAL:   changing to %s in the container: %s\n", w->cwd, strerror(errno));
		if (k > 0 && (size_t)k < sizeof line)
			(void)!write(2, line, (size_t)k);
		_exit(255);
	}
	if (drop_privileges() < 0) {
		int k = snprintf(line, sizeof line, "FATAL:   dropping the payload's privileges: %s\n", strerror(errno));
		if (k > 0 && (size_t)k < sizeof line)
			(void)!write(2, line, (size_t)k);
		_exit(255);
	}
	sigprocmask(SIG_SETMASK, callers, NULL);
	execve(w->exec, w->argv, w->envp);
	int k = snprintf(line, sizeof line, "FATAL:   starting %s: %s\n", w->exec, strerror(errno));
	if (k > 0 && (size_t)k < sizeof line)
		(void)!write(2, line, (size_t)k);
	_exit(255);
}

static int status_code(int st) {
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

// supervise passes signals on to the payload until it exits, and returns
// its status in shell form: 137 when the launcher died (the payload is
// killed then), as the Go stage does.
static int supervise(const struct warm *w, int sfd, pid_t payload) {
	struct pollfd pf[3] = {{sfd, POLLIN, 0}, {launch_preinit_fd, POLLIN, 0}, {w->conn, POLLIN, 0}};
	long long lost_at = 0;
	for (;;) {
		int timeout = -1;
		if (lost_at > 0) {
			long long left = lost_at + WARM_LOST_WARN_MS - now_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		int n = poll(pf, 3, timeout);
		if (n < 0 && errno != EINTR)
			return 255;
		if (lost_at > 0 && now_ms() >= lost_at + WARM_LOST_WARN_MS) {
			say(w->lost);
			lost_at = 0;
		}
		if (n <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD) {
					int st;
					pid_t p;
					while ((p = waitpid(-1, &st, WNOHANG)) > 0)
						if (p == payload)
							return status_code(st);
				} else if (!((sig == SIGINT || sig == SIGQUIT) && preinit_from_terminal()))
					kill(payload, sig);
			}
		}
		if (pf[1].revents) {
			char c;
			ssize_t r = read(launch_preinit_fd, &c, 1);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				kill(payload, SIGKILL); // the launcher was killed
				return 137;
			}
		}
		if (pf[2].revents) { // the holder is gone: its image no longer reads
			pf[2].fd = -1;
			lost_at = now_ms();
		}
	}
}

// read_children reads the children file (fd) whole into buf (cap bytes):
// the pids, each followed by a space. It returns their number, at most max,
// in pids; a last one cut off by the buffer is left out (a later round
// finds it).
static int read_children(int fd, char *buf, size_t cap, pid_t *pids, int max) {
	size_t n = 0;
	for (;;) {
		ssize_t r = pread(fd, buf + n, cap - 1 - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	buf[n] = '\0';
	int k = 0;
	for (char *p = buf; *p != '\0' && k < max;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p || *end != ' ')
			break; // none, or cut off
		if (pid > 0)
			pids[k++] = (pid_t)pid;
		p = end + 1;
	}
	return k;
}

// kill_leftovers kills every process still below the stage (the payload's
// orphans come to it, a child subreaper), again until none is left, and
// reaps them. children is /proc/self/task/PID/children, opened on the
// host's /proc. It gives up after about two seconds: what is left then is
// SIGKILLed and only not reaped.
static void kill_leftovers(int children) {
	static char buf[65536];
	pid_t pids[4096];
	long long deadline = now_ms() + 2000;
	for (;;) {
		int st;
		while (waitpid(-1, &st, WNOHANG) > 0)
			;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
			return; // ECHILD: none left
		int k = read_children(children, buf, sizeof buf, pids, 4096);
		for (int i = 0; i < k; i++)
			kill(pids[i], SIGKILL);
		if (now_ms() > deadline)
			return;
		struct timespec ts = {0, 1000000}; // their own children come next
		nanosleep(&ts, NULL);
	}
}

// close_inherited closes the caller's descriptors above 2 that the payload
// now has (those without close-on-exec: launch's own have it), as the Go
// stage does once the payload is started, so that a reader waiting for
// their end is not kept waiting by this process.
static void close_inherited(void) {
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int dfd = dirfd(d), fds[1024], n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 1024) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dfd) {
			int fl = fcntl(fd, F_GETFD);
			if (fl >= 0 && !(fl & FD_CLOEXEC))
				fds[n++] = fd;
		}
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

// warm_stage runs in the child of preinit_split: it joins the holder's
// namespaces and supervises the payload, and exits. It returns only when it
// could not join (WARM_SPLIT: nothing changed; WARM_BROKEN: in the user
// namespace only).
int warm_stage(struct warm *w, int tl, const sigset_t *callers) {
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	int children = open(path, O_RDONLY | O_CLOEXEC);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	// Without the children file the payload's leftovers could not be
	// found: build the container as usual instead.
	if (children < 0 || setns(w->userns, CLONE_NEWUSER) < 0) {
		if (children >= 0)
			close(children);
		if (null >= 0)
			close(null);
		warm_forget(w);
		sigprocmask(SIG_SETMASK, callers, NULL);
		return WARM_SPLIT;
	}
	if (setns(w->mntns, CLONE_NEWNS) < 0) {
		preinit_fail(PREINIT_BROKEN, "setns (the warm container's mount namespace)");
		warm_forget(w);
		sigprocmask(SIG_SETMASK, callers, NULL);
		return WARM_BROKEN;
	}
	close(w->userns);
	close(w->mntns);
	w->userns = w->mntns = -1;
	preinit_timeline(tl, "stage", "warm-joined");
	say(w->joined);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	// A caller that ignores SIGCHLD would leave no child to reap.
	signal(SIGCHLD, SIG_DFL);
	// Every signal stays blocked here (preinit_split left them so): the
	// forwarded ones and SIGCHLD are read from a signalfd, and no other
	// (SIGPIPE, SIGXCPU, …) can end this process and leave the payload's
	// orphans to nobody. The payload gets the caller's mask back.
	sigset_t handled;
	sigemptyset(&handled);
	sigaddset(&handled, SIGCHLD);
	for (size_t i = 0; i < preinit_nforwarded; i++)
		if (!preinit_ignored(preinit_forwarded[i]))
			sigaddset(&handled, preinit_forwarded[i]);
	int sfd = signalfd(-1, &handled, SFD_CLOEXEC);
	pid_t self = getpid();
	pid_t payload = sfd < 0 ? -1 : fork();
	if (payload == 0)
		run_payload(w, callers, self);
	int code = 255;
	if (payload < 0) {
		char line[256];
		int k = snprintf(line, sizeof line, "FATAL:   starting %s: %s\n", w->exec, strerror(errno));
		if (k > 0 && (size_t)k < sizeof line)
			(void)!write(2, line, (size_t)k);
	} else {
		preinit_timeline(tl, "stage", "payload-started");
		close_inherited();
		code = supervise(w, sfd, payload);
		preinit_timeline(tl, "stage", "payload-reaped");
	}
	kill_leftovers(children);
	preinit_timeline(tl, "stage", "payload-tree-killed");
	// The caller reading the payload's output sees its end now.
	if (null >= 0)
		for (int fd = 0; fd < (tl ? 2 : 3); fd++)
			dup2(null, fd);
	unsigned char c = (unsigned char)code;
	(void)!send(launch_preinit_fd, &c, 1, MSG_NOSIGNAL);
	preinit_timeline(tl, "stage", "status-sent");
	_exit(code);
}

