package container

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/subid"
)

// --fakeroot: the payload runs as uid 0 in a user namespace of its own,
// where 0 is the calling user and, with the user's /etc/subuid and
// /etc/subgid ranges, 1…65536 the start of those ranges, mapped by the
// setuid helpers newuidmap and newgidmap (package uidmap). Without ranges
// root alone is mapped (0 → the user), which the launcher may write itself.
//
// The constructor (internal/preinit) leaves such a command line alone, so
// the stage is always cloned here (runStage) with CLONE_NEWUSER and, when
// the helpers write the maps, none in its SysProcAttr: the launcher runs
// the helpers on the stage's pid and only then sends the Config, which the
// stage blocks reading, so it cannot go on before its maps exist. The stage
// then becomes root (becomeRoot) and keeps every capability it has in its
// namespace for the payload (dropPrivileges(keepBounding)); no_new_privs
// stays.

// helpers reports whether the setuid helpers write the maps.
func (f *Fakeroot) helpers() bool { return f.NewUIDMap != "" }

// prepareFakeroot works out the maps of a --fakeroot run for the host user
// u (internal/fakeroot), warning once through log when there are no
// subordinate ranges (both files must have one).
func prepareFakeroot(u User, tools fakeroot.Tools, log *msg.Logger) (*Fakeroot, error) {
	m, err := fakeroot.ForUser(u.Name, u.UID, u.GID, tools)
	if err != nil {
		return nil, err
	}
	if m.Missing != "" {
		log.Warnf("--fakeroot: %s has no range for %s: only root is mapped (to you), so changing a file's owner "+
			"to any other id, or a program that switches to another user (apt-get), will fail", m.Missing, u.Name)
	}
	return &Fakeroot{UIDMap: m.UID, GIDMap: m.GID, NewUIDMap: m.NewUIDMap, NewGIDMap: m.NewGIDMap}, nil
}

// fakerootUser is who the payload of a --fakeroot run is: root, with its
// home at home ("" for /root).
func fakerootUser(home string) User {
	if home == "" {
		home = "/root"
	}
	return User{UID: 0, GID: 0, Name: "root", Group: "root", Gecos: "root", Home: home, Shell: "/bin/sh"}
}

// sysProcMaps turns a map into SysProcAttr's form.
func sysProcMaps(m []subid.Mapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: e.Inside, HostID: e.Outside, Size: e.Size}
	}
	return out
}

// writeMaps has the helpers write the stage's (pid's) uid and gid maps.
func (f *Fakeroot) writeMaps(pid int) error {
	m := fakeroot.Maps{UID: f.UIDMap, GID: f.GIDMap, NewUIDMap: f.NewUIDMap, NewGIDMap: f.NewGIDMap}
	return m.WriteMaps(pid)
}

// allCaps lists every capability the running kernel knows, to keep as
// ambient across the stage's execve (its uid is not mapped yet then, so it
// would lose them).
func allCaps() []uintptr {
	last := unix.CAP_LAST_CAP
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < last {
			last = n
		}
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps
}

// becomeRoot makes the stage of a --fakeroot run uid and gid 0 in its
// namespace, with no supplementary groups where setgroups is allowed (the
// helpers' maps; with a map of root alone it is denied, and the groups
// the user had show as unmapped).
func becomeRoot() error {
	if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "allow" {
		if err := unix.Setgroups(nil); err != nil && !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("--fakeroot: clearing supplementary groups: %w", err)
		}
	}
	if err := unix.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("--fakeroot: becoming gid 0 (is the gid map written?): %w", err)
	}
	if err := unix.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("--fakeroot: becoming uid 0 (is the uid map written?): %w", err)
	}
	return nil
}
