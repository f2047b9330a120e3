package container

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// How the payload is kept away from the processes launch runs beside it in
// the container's user namespace (the stage, the FUSE servers): the kernel
// lets a process ptrace another of the same uid and user namespace — and
// open its /proc/PID/mem, environ, fd/*, root — only if the tracer's
// capabilities include every one in the target's permitted set. The payload
// has none, so every process of launch's in that namespace holds one:
//
//   - the stage keeps its own capabilities on every thread, the one that
//     forks the payload included (dropPrivileges empties only what the
//     payload inherits through execve);
//   - the FUSE servers run as the user, who loses capabilities at execve,
//     so they are started with fuse.ServerCaps as an ambient capability.
//
// Processes outside the namespace (the launcher) are out of reach anyway: a
// process has no capability in an ancestor of its own user namespace (so a
// user namespace the payload makes itself gives it none here). The stage cannot
// simply be made non-dumpable instead: with the constructor's start its
// memory belongs to the initial user namespace, and the user would lose
// /proc/PID/ns, environ, fd and strace of their own stage; and an exec'd
// FUSE server is dumpable again whatever its parent set.

// dropPrivileges leaves the calling thread with no_new_privs and empty
// bounding, ambient and inheritable sets, so that a program it forks and
// executes (the payload) has no capabilities: at execve a process's
// permitted set becomes its bounding set with its inheritable one for uid 0,
// its ambient set for any other uid (file capabilities never apply: the
// image is mounted nosuid, and no_new_privs forbids them), all empty here.
// The thread's own permitted and effective sets are kept (see above).
//
// keepBounding (--fakeroot) keeps the bounding set: the payload, uid 0 in
// its namespace, then gets at execve the capabilities the stage holds there
// (all of them; no_new_privs lets execve grant no more than that), as
// Apptainer's fakeroot does. Such a payload can then reach the stage and
// the FUSE servers, which hold nothing the user does not: the namespace is
// the user's own.
func dropPrivileges(keepBounding bool) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	for c := 0; c <= 63 && !keepBounding; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err == unix.EINVAL {
			break // past the last capability this kernel knows
		} else if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	return clearInheritable()
}

// clearInheritable empties the calling thread's ambient and inheritable
// capability sets, keeping its permitted and effective ones. A stage
// re-executed with ambient capabilities (stageSysProcAttr) calls it first,
// so that the FUSE servers it starts do not get them too.
func clearInheritable() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing inheritable capabilities: %w", err)
	}
	return nil
}
