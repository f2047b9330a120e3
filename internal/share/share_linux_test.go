package share

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testIdentity is an identity no real launch uses, unique to this test run.
func testIdentity(t *testing.T) Identity {
	return Identity{UID: os.Getuid(), GID: os.Getgid(), Ino: uint64(os.Getpid()),
		Server: "test", Scope: t.Name() + strconv.FormatInt(time.Now().UnixNano(), 10)}
}

// TestClaimOrder: the first claim holds, the next one is a client, and a
// claim that may not hold finds nothing when nobody holds.
func TestClaimOrder(t *testing.T) {
	id := testIdentity(t)
	if h, c, err := Claim(id, false); h != nil || c != nil || err != nil {
		t.Fatalf("Claim(nobody holds, holdOK=false) = %v, %v, %v; want nothing", h, c, err)
	}
	h, c, err := Claim(id, true)
	if err != nil || h == nil || c != nil {
		t.Fatalf("first Claim = %v, %v, %v; want a holder", h, c, err)
	}
	h2, c2, err := Claim(id, true)
	if err != nil || h2 != nil || c2 == nil {
		t.Fatalf("second Claim = %v, %v, %v; want a client", h2, c2, err)
	}
	if c2.HolderPid != os.Getpid() {
		t.Errorf("client sees holder pid %d, want %d", c2.HolderPid, os.Getpid())
	}
	// A holder that never opened stops even with a client connected, and
	// turns it away: with a reply ("stopping"; unprivileged, "cloning": it
	// cannot clone mounts at all) or, not yet accepted, a reset.
	if !h.StopIfUnused(false) {
		t.Errorf("StopIfUnused with a connected client but not open: false, want true")
	}
	if m, err := c2.Mount(5 * time.Second); err == nil {
		m.Close()
		t.Errorf("Mount from a stopped holder succeeded")
	} else if e := err.Error(); !strings.Contains(e, "stopping") && !strings.Contains(e, "cloning") && !strings.Contains(e, "reset") {
		t.Errorf("Mount from a stopped holder: %v, want it turned away", err)
	}
	h.Linger(0, nil) // returns: stopped, and the client's connection is closed by the failed Mount
	// Stopped: the rendezvous is free again.
	h3, _, err := Claim(id, true)
	if err != nil || h3 == nil {
		t.Fatalf("Claim after Stop = %v, %v; want a new holder", h3, err)
	}
	h3.Stop()
}

// TestClaimOtherUser: a rendezvous held by a process of another uid (here:
// an identity naming a uid that is not ours) is never used; it is passed
// over for the next generation's name, and only when every one is taken
// does Claim give up, naming the holders' uid.
func TestClaimOtherUser(t *testing.T) {
	id := testIdentity(t)
	id.UID = os.Getuid() + 1
	var ls []*net.UnixListener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for gen := 0; gen < Generations; gen++ {
		l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: id.Name(gen), Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		h, c, err := Claim(id, true)
		if gen < Generations-1 {
			if err != nil || h == nil || h.Name != id.Name(gen+1) {
				t.Fatalf("Claim with generations 0-%d taken = %v, %v, %v; want a holder of generation %d", gen, h, c, err, gen+1)
			}
			h.Stop()
			continue
		}
		if h != nil || c != nil || err == nil || !strings.Contains(err.Error(), "uid "+strconv.Itoa(os.Getuid())) {
			t.Fatalf("Claim of names all held by another uid = %v, %v, %v; want an error naming the holder's uid", h, c, err)
		}
	}
}

// TestSquattedNameStillShares: another user (nobody, by a thread of this
// root process with that effective uid) binds the first name of an image,
// as it could after seeing it in /proc/net/unix; the user's launches of
// that image still find each other, on the next name.
func TestSquattedNameStillShares(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to bind a name as another user")
	}
	id := testIdentity(t)
	squat := make(chan error)
	var l *net.UnixListener
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
			squat <- e
			return
		}
		var err error
		l, err = net.ListenUnix("unixpacket", &net.UnixAddr{Name: id.Name(0), Net: "unixpacket"})
		squat <- err
	}()
	if err := <-squat; err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, _, err := Claim(id, true)
	if err != nil || h == nil || h.Name != id.Name(1) {
		t.Fatalf("Claim with the first name squatted = %v, %v; want a holder of the second", h, err)
	}
	defer h.Stop()
	_, c, err := Claim(id, true)
	if err != nil || c == nil || c.HolderPid != os.Getpid() {
		t.Fatalf("second Claim = %v, %v; want a client of this process's holder", c, err)
	}
	c.Close()
}

// TestSilentConnection: a connection that never sends its request does
// not count as a client (it would keep a holder from ever stopping), and
// is dropped after requestWait.
func TestSilentConnection(t *testing.T) {
	id := testIdentity(t)
	h, _, err := Claim(id, true)
	if err != nil || h == nil {
		t.Fatalf("Claim = %v, %v", h, err)
	}
	defer h.Stop()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: id.Name(0), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond)
	if n := clients(h); n != 0 {
		t.Errorf("a silent connection counts as %d clients, want 0", n)
	}
	if !h.StopIfUnused(false) {
		t.Errorf("StopIfUnused with only a silent connection: false, want true")
	}
	_ = c.SetReadDeadline(time.Now().Add(requestWait + 3*time.Second))
	if _, err := c.Read(make([]byte, 16)); err == nil {
		t.Errorf("the silent connection got an answer, want it closed")
	}
}

// inUserNS re-runs the calling test in a user and mount namespace of its
// own (unshare -Urm), where it may clone its own mounts, and reports
// whether the caller is that re-run. Root runs the test directly.
func inUserNS(t *testing.T) bool {
	if os.Geteuid() == 0 || os.Getenv("LAUNCH_SHARE_TEST_USERNS") != "" {
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("unshare not found: %v", err)
	}
	cmd := exec.Command(unshare, "-Urm", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "LAUNCH_SHARE_TEST_USERNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a user namespace: %v\n%s", t.Name(), err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a user namespace did not pass:\n%s", t.Name(), out)
	}
	return false
}

// TestServesClones: a holder whose mount can be cloned hands a detached
// mount to each client once it is open (as root, or in a user namespace of
// the test's own); without the right to clone mounts Prepare fails and
// clients are told why.
func TestServesClones(t *testing.T) {
	t.Run("privileged", func(t *testing.T) {
		if inUserNS(t) {
			servesClones(t, true)
		}
	})
	if os.Geteuid() != 0 && os.Getenv("LAUNCH_SHARE_TEST_USERNS") == "" {
		t.Run("unprivileged", func(t *testing.T) { servesClones(t, false) })
	}
}

func servesClones(t *testing.T, privileged bool) {
	id := testIdentity(t)
	h, _, err := Claim(id, true)
	if err != nil || h == nil {
		t.Fatalf("Claim = %v, %v", h, err)
	}
	defer h.Stop()
	_, c, err := Claim(id, true)
	if err != nil || c == nil {
		t.Fatalf("client Claim = %v, %v", c, err)
	}
	readyErr := h.Prepare(t.TempDir())
	if privileged {
		// Prepared but not open: clients wait.
		_, early, err := Claim(id, true)
		if err != nil || early == nil {
			t.Fatalf("client Claim = %v, %v", early, err)
		}
		if m, err := early.Mount(100 * time.Millisecond); err == nil {
			m.Close()
			t.Errorf("a client got a mount before Open")
		}
		h.Open()
	}
	mnt, err := c.Mount(5 * time.Second)
	if privileged {
		if readyErr != nil || err != nil {
			t.Fatalf("privileged: Prepare = %v, Mount = %v; want a mount", readyErr, err)
		}
		var st os.FileInfo
		if st, err = mnt.Stat(); err != nil || !st.IsDir() {
			t.Errorf("the shared mount's root: %v, %v; want a directory", st, err)
		}
		mnt.Close()
		if h.StopIfUnused(false) {
			t.Errorf("StopIfUnused while a client holds a mount: true, want false")
		}
		// A launch that comes while the mount is in use joins it.
		_, c2, err := Claim(id, true)
		if err != nil || c2 == nil {
			t.Fatalf("Claim while the mount is in use = %v, %v; want a client", c2, err)
		}
		if m2, err := c2.Mount(5 * time.Second); err != nil {
			t.Errorf("Mount while the holder lingers: %v", err)
		} else {
			m2.Close()
		}
		lingered := make(chan struct{})
		go func() { h.Linger(0, nil); close(lingered) }()
		c.Close()
		select {
		case <-lingered:
			t.Fatalf("Linger returned while a client was still connected")
		case <-time.After(50 * time.Millisecond):
		}
		c2.Close()
		select {
		case <-lingered:
		case <-time.After(5 * time.Second):
			t.Fatalf("Linger did not return once every client was gone")
		}
		if h3, _, err := Claim(id, true); err != nil || h3 == nil {
			t.Errorf("Claim after Linger = %v, %v; want a new holder", h3, err)
		} else {
			h3.Stop()
		}
		return
	}
	// The client is told why, or, when the holder stopped before it
	// accepted the connection, reset (either way it mounts the image itself).
	if readyErr == nil || err == nil || !strings.Contains(readyErr.Error(), "cloning") ||
		!strings.Contains(err.Error(), "cloning") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unprivileged: Prepare = %v, Mount = %v; want both to fail on cloning (Mount: or be reset)", readyErr, err)
	}
}

// clients is how many launches h counts as connected.
func clients(h *Holder) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
