// Package fakeroot knows the calling user's --fakeroot id maps and runs
// host programs as root in a user namespace mapped so: 0 is the user and,
// with the user's /etc/subuid and /etc/subgid ranges, 1…65536 the start of
// those ranges (internal/subid), written by the setuid helpers newuidmap
// and newgidmap of the uidmap package. The container stage of a
// --fakeroot run uses its maps (internal/container); the builders use Run
// to pack, unpack and bootstrap trees whose files belong to subordinate
// ids, and Remove to delete such trees, which the user cannot do from
// outside the namespace.
//
// A program run here is the host's own (mksquashfs, rm, debootstrap), never
// one from an image.
package fakeroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/subid"
)

// subidMax bounds what is read of /etc/subuid and /etc/subgid.
const subidMax = 4 << 20

// The files of the subordinate ranges.
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// uidmapPackage names what provides the helpers, for messages.
const uidmapPackage = "the uidmap package (newuidmap, newgidmap)"

// Maps are the --fakeroot id maps of one user.
type Maps struct {
	// UID and GID map 0 onto the user's ids, and 1… onto the
	// subordinate ranges when there are.
	UID, GID []subid.Mapping
	// NewUIDMap and NewGIDMap are the helpers' paths when there are
	// ranges; "" when root alone is mapped (which a process may write
	// itself).
	NewUIDMap, NewGIDMap string
	// Missing, when there are no ranges, is the file that has none for
	// the user (SubUIDFile or SubGIDFile).
	Missing string
}

// Ranges reports whether the maps hold subordinate ranges (and so need the
// helpers).
func (m *Maps) Ranges() bool { return m.NewUIDMap != "" }

// Identity reports whether the maps are root's identity maps (ForUser),
// which root writes itself, with setgroups allowed.
func Identity(uid, gid []subid.Mapping) bool {
	return len(uid) == 1 && len(gid) == 1 && uid[0] == gid[0] && uid[0].Inside == 0 && uid[0].Outside == 0 && uid[0].Size > 1
}

// Tools are the helper programs: a name is looked up in PATH (then in
// /usr/bin), a path is used as it is; "" means the usual name.
type Tools struct {
	NewUIDMap, NewGIDMap string
}

// ForUser works out the maps of the user name with ids uid and gid from
// /etc/subuid and /etc/subgid (both must have a range), and finds the
// helpers when there are ranges.
//
// Root needs neither ranges nor helpers: it may write any map itself, so
// its maps are the identity over 0…65535 (Identity), and a program in its
// --fakeroot container may switch to any of those ids (apt-get's _apt).
func ForUser(name string, uid, gid int, tools Tools) (*Maps, error) {
	if uid == 0 && gid == 0 {
		id := []subid.Mapping{{Inside: 0, Outside: 0, Size: subid.Count}}
		return &Maps{UID: id, GID: id}, nil
	}
	ur, uok := findRange(SubUIDFile, name, uid)
	gr, gok := findRange(SubGIDFile, name, gid)
	ok := uok && gok
	m := &Maps{UID: subid.Map(uid, ur, ok), GID: subid.Map(gid, gr, ok)}
	if !ok {
		m.Missing = SubUIDFile
		if uok {
			m.Missing = SubGIDFile
		}
		return m, nil
	}
	var err error
	if m.NewUIDMap, err = findHelper(tools.NewUIDMap, "newuidmap"); err != nil {
		return nil, err
	}
	if m.NewGIDMap, err = findHelper(tools.NewGIDMap, "newgidmap"); err != nil {
		return nil, err
	}
	return m, nil
}

// ForMe is ForUser for the calling process's user.
func ForMe(tools Tools) (*Maps, error) {
	name := os.Getenv("USER")
	uid, gid := os.Getuid(), os.Getgid()
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		if n := passwdName(b, uid); n != "" {
			name = n
		}
	}
	return ForUser(name, uid, gid, tools)
}

// passwdName finds the name of uid in /etc/passwd content data.
func passwdName(data []byte, uid int) string {
	id := strconv.Itoa(uid)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == id {
			return f[0]
		}
	}
	return ""
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

// findHelper finds the helper: configured (a path as it is, a name in
// PATH), else name on $PATH, else in /usr/bin.
func findHelper(configured, name string) (string, error) {
	if strings.Contains(configured, "/") {
		if unix.Access(configured, unix.X_OK) != nil {
			return "", fmt.Errorf("--fakeroot with subordinate id ranges needs %s, but %s (launch.conf tools.%s) is not an executable file: install %s or fix the setting",
				name, configured, name, uidmapPackage)
		}
		return configured, nil
	}
	if configured == "" {
		configured = name
	}
	if p, err := exec.LookPath(configured); err == nil {
		return p, nil
	}
	if p := "/usr/bin/" + configured; unix.Access(p, unix.X_OK) == nil {
		return p, nil
	}
	return "", fmt.Errorf("--fakeroot with subordinate id ranges needs %s, which is not installed here: install %s", configured, uidmapPackage)
}

// WriteMaps has the helpers write the uid and gid maps of the process pid,
// which must be in a user namespace of its own that has none yet.
func (m *Maps) WriteMaps(pid int) error {
	for _, h := range []struct {
		path string
		m    []subid.Mapping
	}{{m.NewUIDMap, m.UID}, {m.NewGIDMap, m.GID}} {
		out, err := exec.Command(h.path, subid.HelperArgs(pid, h.m)...).CombinedOutput()
		if err != nil {
			why := strings.Join(strings.Fields(string(bytes.TrimSpace(out))), " ")
			if why == "" {
				why = err.Error()
			}
			return fmt.Errorf("--fakeroot: %s refused the subordinate ids of %s and %s: %s", h.path, SubUIDFile, SubGIDFile, why)
		}
	}
	return nil
}

// trampoline is what the child of Run executes first: it waits until the
// maps are written (a byte on its last descriptor), closes that
// descriptor and executes the program. Its own execve happens while its uid
// is still unmapped; the program's, after, is root's in the namespace and
// so gets every capability there.
const trampoline = `read -r _ <&"$0" && eval "exec $0<&-" && exec "$@"`

// Run runs cmd (not yet started; its Path and Args the host program) as
// root in a new user namespace with m's maps (which must have ranges),
// plus the namespaces of cloneflags (CLONE_NEWNS, CLONE_NEWPID), and waits
// for it. The program dies with the calling thread (Pdeathsig).
func (m *Maps) Run(cmd *exec.Cmd, cloneflags uintptr) error {
	if !m.Ranges() {
		return errors.New("--fakeroot: no subordinate id ranges to map")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating a pipe: %w", err)
	}
	defer pr.Close()
	defer pw.Close()
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, pr)
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	argv = append([]string{"/bin/sh", "-c", trampoline, strconv.Itoa(fd), cmd.Path}, argv[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", argv
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER | cloneflags
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Pdeathsig follows the thread that started the child (go.dev/issue/27505).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s in a new user namespace: %w", cmd.Path, err)
	}
	pr.Close()
	if err := m.WriteMaps(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	if _, err := pw.Write([]byte("\n")); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("starting %s in the fakeroot namespace: %w", argv[4], err)
	}
	pw.Close()
	return cmd.Wait()
}

// Check has the helpers map a process that does nothing, so that a
// refusal (a helper that is not set-uid, a range /etc/subuid does not
// grant) is one line before any work starts.
func (m *Maps) Check() error {
	var out bytes.Buffer
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := m.Run(cmd, 0); err != nil {
		return err
	}
	return nil
}

// RemoveAt removes name in the directory dirfd and everything below it as
// root in the calling user's fakeroot namespace, where the files of the
// user's subordinate ids are root's to remove: `rm -rf` of
// /proc/self/fd/N/NAME, the directory handed over as descriptor N, so no
// path is looked up again. name must be a plain name. The helpers are the
// usual ones (PATH, then /usr/bin): a sweep reads no launch.conf.
func RemoveAt(dirfd int, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("removing %q: not a plain name", name)
	}
	m, err := ForMe(Tools{})
	if err != nil {
		return err
	}
	if !m.Ranges() {
		return fmt.Errorf("%s has no range for this user, so files of subordinate ids cannot be removed", m.Missing)
	}
	// dirfd stays the caller's: a copy goes to the child.
	nfd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	dup := os.NewFile(uintptr(nfd), "dir")
	defer dup.Close()
	var out bytes.Buffer
	cmd := exec.Command(rmPath(), "-rf", "--one-file-system", "--", filepath.Join("/proc/self/fd/3", name))
	cmd.ExtraFiles = []*os.File{dup}
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if err := m.Run(cmd, 0); err != nil {
		why := strings.TrimSpace(out.String())
		if why == "" {
			why = err.Error()
		}
		return fmt.Errorf("removing %s inside the fakeroot namespace: %s", name, why)
	}
	return nil
}

// rmPath is the host's rm.
func rmPath() string {
	for _, p := range []string{"/usr/bin/rm", "/bin/rm"} {
		if unix.Access(p, unix.X_OK) == nil {
			return p
		}
	}
	return "rm"
}
