package container

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

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

// subidMax bounds what is read of /etc/subuid and /etc/subgid.
const subidMax = 4 << 20

// uidmapPackage names what provides the helpers, for messages.
const uidmapPackage = "the uidmap package (newuidmap, newgidmap)"

// helpers reports whether the setuid helpers write the maps.
func (f *Fakeroot) helpers() bool { return f.NewUIDMap != "" }

// prepareFakeroot works out the maps of a --fakeroot run for the host user
// u, warning once through log when there are no subordinate ranges (both
// files must have one), and finds the helpers when there are.
func prepareFakeroot(u User, log *msg.Logger) (*Fakeroot, error) {
	ur, uok := findRange("/etc/subuid", u.Name, u.UID)
	gr, gok := findRange("/etc/subgid", u.Name, u.GID)
	f := &Fakeroot{UIDMap: subid.Map(u.UID, ur, uok && gok), GIDMap: subid.Map(u.GID, gr, uok && gok)}
	if !uok || !gok {
		what := "/etc/subuid"
		if uok {
			what = "/etc/subgid"
		}
		log.Warnf("--fakeroot: %s has no range for %s: only root is mapped (to you), so changing a file's owner "+
			"to any other id, or a program that switches to another user (apt-get), will fail", what, u.Name)
		return f, nil
	}
	var err error
	if f.NewUIDMap, err = findHelper("newuidmap"); err != nil {
		return nil, err
	}
	if f.NewGIDMap, err = findHelper("newgidmap"); err != nil {
		return nil, err
	}
	return f, nil
}

// findRange reads the user's first range from path (none when the file is
// missing or unreadable).
func findRange(path, name string, id int) (subid.Range, bool) {
	fh, err := os.Open(path)
	if err != nil {
		return subid.Range{}, false
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, subidMax))
	if err != nil {
		return subid.Range{}, false
	}
	return subid.Find(data, name, id)
}

// findHelper finds newuidmap or newgidmap on $PATH, else in /usr/bin.
func findHelper(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p := "/usr/bin/" + name; unix.Access(p, unix.X_OK) == nil {
		return p, nil
	}
	return "", fmt.Errorf("--fakeroot with subordinate id ranges needs %s, which is not installed here: install %s", name, uidmapPackage)
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
	for _, h := range []struct {
		path string
		m    []subid.Mapping
	}{{f.NewUIDMap, f.UIDMap}, {f.NewGIDMap, f.GIDMap}} {
		out, err := exec.Command(h.path, subid.HelperArgs(pid, h.m)...).CombinedOutput()
		if err != nil {
			why := strings.Join(strings.Fields(string(bytes.TrimSpace(out))), " ")
			if why == "" {
				why = err.Error()
			}
			return fmt.Errorf("--fakeroot: %s refused the subordinate ids of /etc/subuid and /etc/subgid: %s", h.path, why)
		}
	}
	return nil
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
