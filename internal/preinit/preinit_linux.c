//go:build cgo

// The part of launch that runs before the Go runtime starts (see doc.go).
//
// A user namespace can only be entered by a single-threaded process, and the
// Go runtime starts its threads before any Go code runs: without this, launch
// would have to re-execute itself (a second process start and Go runtime
// start on every launch). For `launch exec|run|shell` this constructor forks
// while the process is still single-threaded:
//
//   - the child makes its own user and mount namespaces (its own uid and gid
//     mapped to themselves), then returns and becomes the Go program, which
//     builds the container and supervises the payload;
//   - the parent never starts Go: it stays outside the namespaces, passes the
//     signals it is sent on to the child, and exits with the payload's exit
//     status as soon as the child reports it over a socket (the child then
//     finishes its clean-up alone). When the parent dies, even of SIGKILL,
//     the child reads end-of-file on that socket and takes the container
//     down.
//
// Everything here is plain system calls; on any failure the child carries on
// without namespaces and the Go side falls back to re-executing itself (which
// meets the same failure and explains it).
//
// For every command line, before anything else, it also opens /dev/null on
// any of the standard descriptors 0-2 the caller left closed (or the socket
// would land there), and records which signals the caller ignores (nohup,
// `cmd &` in a script): the parent leaves those ignored, and the Go side
// keeps them ignored for everything it starts (internal/container).

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preinit_linux.h"

// join_arg is the hidden first argument of a launch that joins an
// instance (internal/container, join_linux.go): launch __launch_join PIDFD
// FLAGS CFGFD ..., made by the Go side once it has checked the instance.
static const char join_arg[] = "__launch_join";

// std_fds opens /dev/null on each of the descriptors 0, 1 and 2 that is
// closed, lowest first, so that each lands on its own number (as the Go
// runtime does at its start, which comes too late for the socket below).
static void std_fds(void) {
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			open("/dev/null", O_RDWR); // the lowest free descriptor: fd
	}
}

// record_ignored notes in launch_preinit_ignored which signals the caller
// left ignored. The Go runtime replaces most dispositions before any Go code
// runs, so only this early look sees them.
static void record_ignored(void) {
	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			launch_preinit_ignored |= 1ULL << (sig - 1);
	}
}

// is_run_verb reports whether the command line is launch exec, run or shell,
// global flags (-q, -v, -d and their long forms, none of which takes a
// value) allowed before the verb.
static int is_run_verb(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-') {
			if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0)
				return 0;
			continue;
		}
		return strcmp(a, "exec") == 0 || strcmp(a, "run") == 0 || strcmp(a, "shell") == 0;
	}
	return 0;
}

// names_oci_source reports whether an argument may be an OCI IMAGE
// (docker://, oci:, oci-archive:, docker-archive:, oras://: exactly the
// transports of internal/transport's Runs, which its TestPreinitList checks
// against the strings below): the Go side first has
// the launch-oci helper convert it into the cache, outside any namespace
// (internal/cli, source.go), so this constructor leaves such a command line
// alone too (leave_to_go). A false match (the payload's argument) only
// costs the Go side's re-execution.
static int names_oci_source(const char *a) {
	return strncmp(a, "docker://", 9) == 0 || strncmp(a, "oci:", 4) == 0 ||
	       strncmp(a, "oci-archive:", 12) == 0 || strncmp(a, "docker-archive:", 15) == 0 ||
	       strncmp(a, "oras://", 7) == 0;
}

// short_fakeroot reports whether a is a cluster of one-letter options
// that holds -f (--fakeroot on exec, run, shell and instance start)
// before any value attached to the cluster: -f, -cf, -fC, -fB/data. The
// payload's own (tail -f, rm -rf) match too.
static int short_fakeroot(const char *a) {
	if (a[0] != '-' || a[1] == '-' || a[1] == '\0')
		return 0;
	for (const char *p = a + 1; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'); p++) {
		if (*p == 'f')
			return 1;
	}
	return 0;
}

// leave_to_go reports whether the command line may ask for --fakeroot
// (any argument that begins with it or is a cluster of one-letter options
// with -f, the payload's too, or LAUNCH_FAKEROOT,
// APPTAINER_FAKEROOT, SINGULARITY_FAKEROOT set; likewise --sharens and its
// variables): its stage needs a user
// namespace mapped by the setuid helpers from outside, which the Go side
// makes (internal/container and internal/fakeroot); or may name an instance
// (an argument that begins with instance://) or ask for --sharens, which
// the Go side looks up before it has this constructor join it (join,
// below), or runs its stage to be joined. This constructor leaves these
// alone. A false match only costs that run the Go side's
// re-execution.
static int leave_to_go(int argc, char **argv) {
	static const char *const vars[] = {"LAUNCH_FAKEROOT", "APPTAINER_FAKEROOT", "SINGULARITY_FAKEROOT",
	                                   "LAUNCH_SHARENS", "APPTAINER_SHARENS", "SINGULARITY_SHARENS"};
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--fakeroot", 10) == 0 || short_fakeroot(argv[i]) || strncmp(argv[i], "instance://", 11) == 0 ||
		    strncmp(argv[i], "--sharens", 9) == 0 || names_oci_source(argv[i]))
			return 1;
	}
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		const char *v = getenv(vars[i]);
		if (v != NULL && v[0] != '\0')
			return 1;
	}
	return 0;
}

// write_file writes s to path, as the uid and gid maps want: in one write.
static int write_file(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(s);
	ssize_t n = write(fd, s, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : -1;
}

// enter makes the child's user and mount namespaces, the calling user's uid
// and gid mapped to themselves (setgroups denied, as an unprivileged user
// must).
static void enter(uid_t uid, gid_t gid) {
	char map[64];
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
		preinit_fail(PREINIT_FAILED, "unshare");
		return;
	}
	// From here on a failure leaves the process in a user namespace it
	// cannot leave: the Go side reports it instead of falling back.
	if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT) {
		preinit_fail(PREINIT_BROKEN, "/proc/self/setgroups");
		return;
	}
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", map) < 0) {
		preinit_fail(PREINIT_BROKEN, "/proc/self/uid_map");
		return;
	}
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (write_file("/proc/self/gid_map", map) < 0) {
		preinit_fail(PREINIT_BROKEN, "/proc/self/gid_map");
		return;
	}
	launch_preinit_state = PREINIT_DONE;
}

// join enters the namespaces of an instance's init, held by the pidfd
// argv[2], that argv[3] names (CLONE_NEW* flags: user and mount always).
// The Go side has checked that the instance is the user's and alive, and
// passes the rest (what the payload needs) on descriptor argv[4]. Joining
// a user namespace needs a single-threaded process: hence here.
static void join(char **argv) {
	const unsigned long allowed = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
	                              CLONE_NEWNET | CLONE_NEWUTS;
	char *end;
	long fd = strtol(argv[2], &end, 10);
	if (*end != '\0' || fd < 3 || fd > 1 << 20) {
		errno = EINVAL;
		preinit_fail(PREINIT_FAILED, "join: pidfd argument");
		return;
	}
	unsigned long flags = strtoul(argv[3], &end, 10);
	if (*end != '\0' || (flags & ~allowed) != 0 || (flags & (CLONE_NEWUSER | CLONE_NEWNS)) != (CLONE_NEWUSER | CLONE_NEWNS)) {
		errno = EINVAL;
		preinit_fail(PREINIT_FAILED, "join: namespace argument");
		return;
	}
	if (setns((int)fd, (int)flags) < 0) {
		preinit_fail(PREINIT_FAILED, "setns");
		close((int)fd);
		return;
	}
	close((int)fd);
	// A process cannot make threads once its children's PID namespace is
	// not its own (clone(CLONE_THREAD) fails): the Go runtime runs in a
	// child, in that namespace, and this process waits for it as the
	// launcher waits for a stage.
	if ((flags & CLONE_NEWPID) && preinit_split(0, NULL, 0, NULL) < 0)
		return;
	launch_preinit_state = PREINIT_JOINED;
}

__attribute__((constructor)) static void launch_preinit(int argc, char **argv, char **envp) {
	std_fds();
	record_ignored();
	if (!is_run_verb(argc, argv) || leave_to_go(argc, argv)) {
		if (argc > 4 && strcmp(argv[1], join_arg) == 0)
			join(argv);
		return;
	}
	const char *off = getenv("LAUNCH_PREINIT");
	if (off != NULL && strcmp(off, "0") == 0)
		return;
	const char *tlv = getenv("LAUNCH_TIMELINE");
	int tl = tlv != NULL && tlv[0] != '\0';
	preinit_timeline(tl, "launcher", "main");

	uid_t uid = getuid();
	gid_t gid = getgid();
	// A lingering launch of this same command line may have its container
	// ready (warm_linux.c): joining it needs no Go runtime at all.
	int w = uid != 0 ? warm_join(argc, argv, envp, tl) : WARM_NONE;
	if (w == WARM_BROKEN)
		return;
	if (w == WARM_NONE && preinit_split(tl, NULL, 0, NULL) < 0)
		return;
	enter(uid, gid);
	preinit_timeline(tl, "stage", "namespaces");
}
