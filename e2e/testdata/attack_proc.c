// attack_proc: run as a container's payload, try to take over the processes
// launch runs beside it in the container's user namespace: the stage (the
// payload's parent) and the FUSE servers (the stage's other children:
// launch-squashfs or squashfuse_ll, fuse-overlayfs). For every thread of each it tries
// PTRACE_ATTACH and opening /proc/PID/task/TID/mem and /proc/PID/mem
// read-write, and reading /proc/PID/environ and the /proc/PID/root link.
//
// It also tries the stage's parent (the launcher, or with --ipc and the like
// the process that re-executed the stage), when it can see it.
//
// Output, one line each:
//   target ROLE PID TASKS CAPEFF  a process found: its number of threads and
//                                 its effective capabilities (hex)
//   BREACH WHAT PID TID       an attempt that succeeded
//   denied WHAT PID TID ERR   an attempt the kernel refused
// Built static by e2e/attack_proc_test.go (the image has no C library).
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void result(int ok, const char *what, int pid, int tid) {
	if (ok)
		printf("BREACH %s %d %d\n", what, pid, tid);
	else
		printf("denied %s %d %d %s\n", what, pid, tid, strerror(errno));
}

static void try_open(const char *what, const char *path, int flags, int pid, int tid) {
	int fd = open(path, flags);
	result(fd >= 0, what, pid, tid);
	if (fd >= 0)
		close(fd);
}

static void attack_task(int pid, int tid) {
	char path[96];
	if (ptrace(PTRACE_ATTACH, tid, 0, 0) == 0) {
		result(1, "ptrace-attach", pid, tid);
		int st;
		waitpid(tid, &st, __WALL);
		ptrace(PTRACE_DETACH, tid, 0, 0);
	} else {
		result(0, "ptrace-attach", pid, tid);
	}
	snprintf(path, sizeof path, "/proc/%d/task/%d/mem", pid, tid);
	try_open("task-mem", path, O_RDWR, pid, tid);
}

// status_field returns the value of field (such as "PPid:") in
// /proc/PID/status, or "?".
static const char *status_field(int pid, const char *field) {
	static char value[64];
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	strcpy(value, "?");
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return value;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, field, strlen(field)) == 0) {
			sscanf(line + strlen(field), "%63s", value);
			break;
		}
	}
	fclose(f);
	return value;
}

// attack tries everything on pid and each of its threads; it returns the
// number of threads found.
static int attack(const char *role, int pid) {
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	int tids[512], n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 512) {
		int tid = atoi(e->d_name);
		if (tid > 0)
			tids[n++] = tid;
	}
	closedir(d);
	printf("target %s %d %d %s\n", role, pid, n, status_field(pid, "CapEff:"));
	for (int i = 0; i < n; i++)
		attack_task(pid, tids[i]);
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	try_open("mem", path, O_RDWR, pid, pid);
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	try_open("environ", path, O_RDONLY, pid, pid);
	char link[256];
	snprintf(path, sizeof path, "/proc/%d/root", pid);
	result(readlink(path, link, sizeof link) >= 0, "root-link", pid, pid);
	fflush(stdout);
	return n;
}

// children lists the children of pid (from every thread's children file).
static int children(int pid, int *out, int max) {
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (atoi(e->d_name) <= 0)
			continue;
		char cpath[320];
		snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", pid, e->d_name);
		FILE *f = fopen(cpath, "r");
		if (f == NULL)
			continue;
		int c;
		while (n < max && fscanf(f, "%d", &c) == 1)
			out[n++] = c;
		fclose(f);
	}
	closedir(d);
	return n;
}

int main(void) {
	int stage = getppid();
	attack("stage", stage);
	int parent = atoi(status_field(stage, "PPid:"));
	if (parent > 0)
		attack("stage-parent", parent);
	int kids[256];
	int n = children(stage, kids, 256);
	for (int i = 0; i < n; i++) {
		if (kids[i] == getpid())
			continue;
		char path[96], comm[64] = "";
		snprintf(path, sizeof path, "/proc/%d/comm", kids[i]);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) == NULL)
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strncmp(comm, "squashfuse", 10) == 0 || strcmp(comm, "launch-squashfs") == 0 ||
		    strcmp(comm, "fuse-overlayfs") == 0)
			attack(comm, kids[i]);
	}
	return 0;
}
