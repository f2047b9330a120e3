// The two halves of joining a warm container (warm_linux.c asks the
// holder, warmstage_linux.c runs the payload in its namespaces).

#ifndef LAUNCH_WARM_LINUX_H
#define LAUNCH_WARM_LINUX_H

#include <signal.h>
#include <sys/types.h>

// A holder's answer (internal/warmroot, Reply).
struct warm {
	int conn, userns, mntns;
	pid_t peer; // the answering process (SO_PEERCRED)
	char *body;
	const char *pid, *joined, *stale, *lost, *cwd, *exec;
	char **argv, **envp;
};

// warm_forget closes what w holds and frees its strings.
void warm_forget(struct warm *w);

// warm_stage runs in the child of preinit_split: it joins w's namespaces and
// supervises the payload, and exits. It returns only when it could not join
// (WARM_SPLIT: nothing changed; WARM_BROKEN: in the user namespace only).
int warm_stage(struct warm *w, int tl, const sigset_t *callers);

#endif
