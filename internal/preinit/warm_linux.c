//go:build cgo

// Joining a warm container, before the Go runtime starts (see
// internal/warmroot for the protocol and the Go side).
//
// A launch that holds its image mount (internal/share) and lingers after
// its payload is done also keeps its container: its user and mount
// namespaces, the root assembled and pivoted into. A later launch with the
// very same request (the command line, the environment, the working
// directory, the user and groups, the launch binary and the cgroups: the bytes built below) asks the holder on
// an abstract socket named after the request. The holder compares the
// request byte for byte and answers with descriptors of its namespaces,
// what its payload was started with (program, arguments, environment,
// working directory), and the host files its container was made from; this
// side checks that none of those changed (stat), and then needs no Go
// runtime at all:
//
//   launcher (this process; parent of preinit_split, as always)
//    └─ stage (the child, warmstage_linux.c: setns into the holder's namespaces, subreaper,
//        │     passes signals on, kills the payload's leftovers, reports)
//        └─ payload (no capabilities, no_new_privs, parent-death SIGKILL)
//
// On any miss (no holder, another user's socket, another request, a
// changed file, no answer within a second) nothing has changed and the
// launch goes on as usual; the request stays in launch_preinit_warm_* so
// that the Go side can serve its own container under that name.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <dirent.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preinit_linux.h"
#include "warm_linux.h"

// The request naming this launch, for the Go side (preinit_linux.go):
// written only here, before the Go runtime starts. The name is the abstract
// socket's, without its leading NUL; "" when no request was made.
char launch_preinit_warm_name[96];
char *launch_preinit_warm_req;
size_t launch_preinit_warm_len;

// The limits of internal/warmroot (MaxRequest, MaxReply).
#define WARM_VERSION "launch-warm/1"
#define WARM_MAX_REQUEST (1u << 20)
#define WARM_MAX_REPLY (4u << 20)
#define WARM_MAX_CGROUP 65536
#define WARM_MAX_GROUPS 1024
#define WARM_WAIT_SEC 1

struct buf {
	char *p;
	size_t len, cap;
	int bad;
};

static void put(struct buf *b, const void *s, size_t n) {
	if (b->bad)
		return;
	if (b->len + n > WARM_MAX_REQUEST) {
		b->bad = 1;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 8192;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->bad = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

// put_str adds s and its NUL.
static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s) + 1); }

// put_fmt adds a formatted string and its NUL.
static void put_fmt(struct buf *b, const char *fmt, ...) {
	char t[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t, sizeof t, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof t) {
		b->bad = 1;
		return;
	}
	put(b, t, (size_t)n + 1);
}

// build_request makes the bytes that name this launch: everything the Go
// side's plan is a function of, besides the host files the reply lists.
static int build_request(struct buf *b, int argc, char **argv, char **envp) {
	put_str(b, WARM_VERSION);
	put_fmt(b, "uid=%u gid=%u", (unsigned)getuid(), (unsigned)getgid());
	gid_t groups[WARM_MAX_GROUPS];
	int ng = getgroups(WARM_MAX_GROUPS, groups);
	if (ng < 0)
		return -1;
	put(b, "groups=", 7);
	for (int i = 0; i < ng; i++) {
		char t[16];
		int n = snprintf(t, sizeof t, "%u,", (unsigned)groups[i]);
		put(b, t, (size_t)n);
	}
	put(b, "", 1);
	struct stat st;
	if (stat("/proc/self/exe", &st) < 0)
		return -1;
	put_fmt(b, "exe=%llu %llu %lld %lld.%09ld %lld.%09ld", (unsigned long long)st.st_dev,
	        (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
	        st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof cwd) == NULL)
		return -1;
	put(b, "cwd=", 4);
	put_str(b, cwd);
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char cg[WARM_MAX_CGROUP];
	size_t cgl = 0;
	for (;;) {
		ssize_t n = read(fd, cg + cgl, sizeof cg - cgl);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cgl += (size_t)n;
		if (cgl == sizeof cg) { // too long to be one we compare
			close(fd);
			return -1;
		}
	}
	close(fd);
	put(b, "cgroup=", 7);
	put(b, cg, cgl);
	put(b, "", 1);
	put_fmt(b, "argc=%d", argc);
	for (int i = 0; i < argc; i++)
		put_str(b, argv[i]);
	int envc = 0;
	while (envp[envc] != NULL)
		envc++;
	put_fmt(b, "envc=%d", envc);
	for (int i = 0; i < envc; i++)
		put_str(b, envp[i]);
	return b->bad ? -1 : 0;
}

// fnv64 is FNV-1a: the name needs no more (the holder compares the whole
// request, and checks the caller's uid).
static uint64_t fnv64(const char *p, size_t n) {
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

// send_all sends on a socket; a holder that closed it is no signal (the
// launcher must not die of SIGPIPE), only a miss.
static int send_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, char *p, size_t n) {
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

// connect_holder connects to the abstract socket name, and keeps the
// connection only if the other end runs as uid (anyone may bind a name);
// *peer is its pid.
static int connect_holder(const char *name, uid_t uid, pid_t *peer) {
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct timeval tv = {WARM_WAIT_SEC, 0};
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(a.sun_path + 1, name, n); // fits: the name is at most 95 bytes
	if (connect(s, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
		close(s);
		return -1;
	}
	struct ucred cr;
	socklen_t cl = sizeof cr;
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != uid) {
		close(s);
		return -1;
	}
	*peer = cr.pid;
	return s;
}

// next returns the string at *at in body[0:n] and moves past it; NULL when
// none is left whole.
static char *next(char *body, size_t n, size_t *at) {
	if (*at >= n)
		return NULL;
	char *s = body + *at;
	char *end = memchr(s, '\0', n - *at);
	if (end == NULL)
		return NULL;
	*at = (size_t)(end - body) + 1;
	return s;
}

// strings reads a count and that many strings, NULL-terminated.
static char **strings(char *body, size_t n, size_t *at) {
	char *c = next(body, n, at);
	if (c == NULL)
		return NULL;
	char *end;
	unsigned long k = strtoul(c, &end, 10);
	if (*end != '\0' || k > n)
		return NULL;
	char **v = calloc(k + 1, sizeof *v);
	if (v == NULL)
		return NULL;
	for (unsigned long i = 0; i < k; i++)
		if ((v[i] = next(body, n, at)) == NULL) {
			free(v);
			return NULL;
		}
	return v;
}

// changed reports whether the host file a dependency line describes is no
// longer what it was: "S DEV INO" the same object (a bind source), "F DEV
// INO SIZE MTIME CTIME" the same file content too (times in ns), "A" still
// absent.
static int changed(const char *dep, const char *path) {
	struct stat st;
	int r = stat(path, &st);
	unsigned long long dev, ino;
	long long size, mt, ct;
	switch (dep[0]) {
	case 'A':
		return r == 0;
	case 'S':
		if (sscanf(dep, "S %llu %llu", &dev, &ino) != 2)
			return 1;
		return r != 0 || st.st_dev != dev || st.st_ino != ino;
	case 'F':
		if (sscanf(dep, "F %llu %llu %lld %lld %lld", &dev, &ino, &size, &mt, &ct) != 5)
			return 1;
		return r != 0 || st.st_dev != dev || st.st_ino != ino || st.st_size != size ||
		       (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != mt ||
		       (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec != ct;
	}
	return 1;
}

// parse reads the body of a holder's answer and checks its host files:
// -1 for a malformed answer, -2 when a file changed.
static int parse(struct warm *w, size_t n) {
	size_t at = 0;
	char *b = w->body;
	if ((w->pid = next(b, n, &at)) == NULL || (w->joined = next(b, n, &at)) == NULL ||
	    (w->stale = next(b, n, &at)) == NULL || (w->lost = next(b, n, &at)) == NULL ||
	    (w->cwd = next(b, n, &at)) == NULL || (w->exec = next(b, n, &at)) == NULL)
		return -1;
	if ((w->argv = strings(b, n, &at)) == NULL || (w->envp = strings(b, n, &at)) == NULL)
		return -1;
	if (w->argv[0] == NULL || w->cwd[0] != '/' || w->exec[0] == '\0')
		return -1;
	char **deps = strings(b, n, &at);
	if (deps == NULL)
		return -1;
	int bad = 0;
	for (size_t i = 0; deps[i] != NULL && !bad; i += 2) {
		const char *path = deps[i + 1];
		if (path == NULL || path[0] != '/')
			bad = -1;
		else if (changed(deps[i], path)) {
			if (w->stale[0] != '\0') {
				char line[PATH_MAX + 512];
				int k = snprintf(line, sizeof line, "%s%s\n", w->stale, path);
				if (k > 0 && (size_t)k < sizeof line)
					(void)!write(2, line, (size_t)k);
			}
			bad = -2;
		}
	}
	free(deps);
	return bad;
}

// same_file reports whether two descriptors are the same object (nsfs
// inodes identify namespaces).
static int same_file(int a, int b) {
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// launch_made reports whether userns is a user namespace that a launch of
// this user made: its parent is this process's own user namespace (self),
// its owner our uid.
static int launch_made(int userns, int self) {
	int parent = ioctl(userns, NS_GET_PARENT);
	if (parent < 0)
		return 0;
	uid_t owner;
	int ok = ioctl(userns, NS_GET_OWNER_UID, &owner) == 0 && owner == getuid() && same_file(parent, self);
	close(parent);
	return ok;
}

// genuine reports whether the answer can be a launch's: userns made by a
// launch of this user and mntns owned by it (a namespace made inside a
// container, by a payload that would own it and hold capabilities over a
// stage that joined it, has another parent), and the answering process pid
// (SO_PEERCRED) a launch's stage: in a user namespace a launch made,
// holding CAP_SYS_ADMIN there. A payload has no capabilities in a launch's
// namespace, so it cannot answer in a holder's place (with a real holder's
// namespaces and a program of its choice).
static int genuine(int userns, int mntns, pid_t pid) {
	int self = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return 0;
	int ok = launch_made(userns, self);
	int mnt_owner = ok ? ioctl(mntns, NS_GET_USERNS) : -1;
	ok = mnt_owner >= 0 && same_file(mnt_owner, userns);
	if (mnt_owner >= 0)
		close(mnt_owner);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	int peer = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	ok = peer >= 0 && launch_made(peer, self);
	if (peer >= 0)
		close(peer);
	close(self);
	if (!ok)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nCapEff:");
	return p != NULL && ((strtoull(p + 9, NULL, 16) >> 21) & 1); // CAP_SYS_ADMIN
}

// ask sends the request on conn and reads the answer into w.
static int ask(struct warm *w, const struct buf *req) {
	unsigned char hdr[8];
	uint32_t len = (uint32_t)req->len;
	memcpy(hdr, "LW1\0", 4);
	for (int i = 0; i < 4; i++)
		hdr[4 + i] = (unsigned char)(len >> (8 * i));
	if (send_all(w->conn, (char *)hdr, 8) < 0 || send_all(w->conn, req->p, req->len) < 0)
		return -1;
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = {hdr, 8};
	struct msghdr m;
	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = ctl.buf;
	m.msg_controllen = sizeof ctl.buf;
	ssize_t got;
	do
		got = recvmsg(w->conn, &m, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	int fds[2], nfds = 0;
	if (got <= 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (nfds < 2)
				fds[nfds++] = fd;
			else
				close(fd);
		}
	}
	if (nfds == 2) {
		w->userns = fds[0];
		w->mntns = fds[1];
	} else if (nfds == 1)
		close(fds[0]);
	if ((m.msg_flags & MSG_CTRUNC) || (got < 8 && read_all(w->conn, (char *)hdr + got, (size_t)(8 - got)) < 0))
		return -1;
	if (memcmp(hdr, "LW1Y", 4) != 0 || nfds != 2)
		return -1; // "LW1N": not this container
	if (!genuine(w->userns, w->mntns, w->peer))
		return -1;
	len = 0;
	for (int i = 0; i < 4; i++)
		len |= (uint32_t)hdr[4 + i] << (8 * i);
	if (len == 0 || len > WARM_MAX_REPLY || (w->body = malloc(len)) == NULL)
		return -1;
	if (read_all(w->conn, w->body, len) < 0)
		return -1;
	return parse(w, len);
}

void warm_forget(struct warm *w) {
	if (w->conn >= 0)
		close(w->conn);
	if (w->userns >= 0)
		close(w->userns);
	if (w->mntns >= 0)
		close(w->mntns);
	free(w->body);
	free(w->argv);
	free(w->envp);
}

int warm_join(int argc, char **argv, char **envp, int tl) {
	struct buf req = {0};
	if (build_request(&req, argc, argv, envp) < 0) {
		free(req.p);
		return WARM_NONE;
	}
	uid_t uid = getuid();
	snprintf(launch_preinit_warm_name, sizeof launch_preinit_warm_name, "launch/warm/%u/%016llx", (unsigned)uid,
	         (unsigned long long)fnv64(req.p, req.len));
	launch_preinit_warm_req = req.p;
	launch_preinit_warm_len = req.len;
	struct warm w = {-1, -1, -1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	if ((w.conn = connect_holder(launch_preinit_warm_name, uid, &w.peer)) < 0)
		return WARM_NONE;
	preinit_timeline(tl, "launcher", "warm-connected");
	int r = ask(&w, &req);
	if (r < 0) {
		// A stale container is served no more, so that this launch's own
		// can take its name (internal/warmroot, staleNotice).
		if (r == -2)
			(void)!send(w.conn, "S", 1, MSG_NOSIGNAL);
		warm_forget(&w);
		return WARM_NONE;
	}
	preinit_timeline(tl, "launcher", "warm-answered");
	int mine[3] = {w.conn, w.userns, w.mntns};
	sigset_t callers;
	if (preinit_split(tl, mine, 3, &callers) < 0) {
		warm_forget(&w);
		return WARM_NONE;
	}
	return warm_stage(&w, tl, &callers);
}
