package e2e

// Attack on the shared image mounts (issue 14, item 14): the rendezvous
// names are abstract unix sockets, which every user sees in /proc/net/unix
// and may bind first. Another user who binds a victim's name must not stop
// the victim's launches of that image from sharing one mount.

import (
	"net"
	"os"
	"os/user"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// servingName finds the rendezvous name in a holder's -d output.
var servingName = regexp.MustCompile(`serving the image mount to this user's other launches of it \((@launch/share/\S+)\)`)

// bindAs binds the abstract unixpacket name as uid, from a thread of this
// (root) process whose effective uid is switched for it; the thread ends
// with its goroutine. The listener is closed at the end of the test.
func bindAs(t *testing.T, uid int, name string) {
	t.Helper()
	type res struct {
		l   *net.UnixListener
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- res{nil, e}
			return
		}
		l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: name, Net: "unixpacket"})
		ch <- res{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("binding %s as uid %d: %v", name, uid, r.err)
	}
	t.Cleanup(func() { r.l.Close() })
}

// TestAttackShareSquat: the unprivileged test user binds the name that
// root's launch of an image used (as seen in /proc/net/unix, here in its
// -d output), once that launch is done. Root's next two launches of the
// image still share one squashfuse mount. With 5195d4f the name was the
// same for every launch of the image and could be computed by anyone from
// the image file and the cgroup; once bound by another user, every later
// launch mounted the image on its own.
func TestAttackShareSquat(t *testing.T) {
	needSharing(t)
	if !isRoot() {
		t.Skip("needs root: the squatter is another user (the unprivileged test user, as a thread of root's test)")
	}
	name := os.Getenv("LAUNCH_E2E_USER")
	if name == "" {
		name = "launchtest"
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s to squat the name (scripts/test creates it): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	img := busyboxImage(t, nil)
	r := launch(t, "-d", "exec", img, "true")
	wantOK(t, r)
	m := servingName.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("the launch did not say which name it served its mount on:\n%s", r.Stderr)
	}
	bindAs(t, uid, m[1])

	first := startLaunch(t, nil, "up", "-d", "exec", img, "sh", "-c", "echo up; exec sleep 30")
	second := startLaunch(t, nil, "in", "-d", "exec", img, "sh", "-c", "echo in; exec sleep 30")
	procs := descendantsOf(first.cmd.Process.Pid)
	seconds := descendantsOf(second.cmd.Process.Pid)
	for pid, cl := range seconds {
		procs[pid] = cl
	}
	shared := fuseServers(seconds) == 0
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	second.wait(t, "the second launch")
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	first.wait(t, "the first launch")
	if !shared {
		t.Errorf("with %s bound by uid %d, the second launch mounted the image itself (squashfuse under it), want it to share the first one's mount:\nfirst: %s\nsecond: %s",
			m[1], uid, first.errText(), second.errText())
	} else if e := second.errText(); !regexp.MustCompile(`using the image mount of pid \d+ \(@launch/share/`).MatchString(e) {
		t.Errorf("the second launch's -d output does not say whose mount it uses: %s", e)
	}
	waitGone(t, procs, 3*time.Second, "both launches")
}
