// What the parts of the constructor share (preinit_linux.c, warm_linux.c).
// Everything here runs before the Go runtime starts: plain system calls.

#ifndef LAUNCH_PREINIT_LINUX_H
#define LAUNCH_PREINIT_LINUX_H

#include <signal.h>
#include <sys/types.h>

enum { PREINIT_NONE = 0, PREINIT_DONE = 1, PREINIT_FAILED = 2, PREINIT_BROKEN = 3, PREINIT_JOINED = 4 };

// The record the Go side reads (preinit_linux.go), written only before the
// Go runtime starts (split_linux.c defines them).
extern int launch_preinit_state;                 // one of the PREINIT_ values
extern int launch_preinit_errno;                 // errno of the failed step
extern const char *launch_preinit_step;          // which step failed
extern int launch_preinit_fd;                    // the child's end of the socket
extern unsigned long long launch_preinit_ignored; // bit N-1: signal N was ignored at start

// The signals passed on to the child: those of docs/process-model.md, the
// same list as the Go side's (internal/container).
extern const int preinit_forwarded[];
extern const size_t preinit_nforwarded;

// preinit_ignored reports whether the caller left sig ignored.
int preinit_ignored(int sig);
// preinit_timeline writes a LAUNCH_TIMELINE milestone when on.
void preinit_timeline(int on, const char *role, const char *event);
// preinit_fail records the failed step for the Go side.
void preinit_fail(int state, const char *step);
// preinit_from_terminal reports whether the process group is the
// terminal's foreground one (INT and QUIT then came from it).
int preinit_from_terminal(void);
// preinit_split forks: the parent becomes the waiter and never returns;
// the child returns 0 with launch_preinit_fd set; -1: no fork. The
// descriptors close_fds (n of them) are closed in the parent. With
// keep_blocked, the child keeps every signal blocked and gets the caller's
// mask there.
int preinit_split(int tl, const int *close_fds, int n, sigset_t *keep_blocked);

// What warm_join did when it returns.
enum {
	WARM_NONE = 0,   // nothing: no container to join; go on as usual
	WARM_SPLIT = 1,  // forked (this is the child, launch_preinit_fd set) but
	                 // could not join, nothing else changed: make namespaces
	WARM_BROKEN = 2, // the child is in a namespace it cannot leave (the
	                 // state says so): the Go side reports it
};

// warm_join joins the container of a lingering launch of the same command
// line (warm_linux.c), and never returns when it does. It also records the
// request that names this command line (launch_preinit_warm_*), for the
// Go side to serve its own container with.
int warm_join(int argc, char **argv, char **envp, int tl);

#endif
