package share

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
	if !h.StopIfUnused() {
		t.Errorf("StopIfUnused with a connected client but not open: false, want true")
	}
	if m, err := c2.Mount(5 * time.Second); err == nil {
		m.Close()
		t.Errorf("Mount from a stopped holder succeeded")
	} else if e := err.Error(); !strings.Contains(e, "stopping") && !strings.Contains(e, "cloning") && !strings.Contains(e, "reset") {
		t.Errorf("Mount from a stopped holder: %v, want it turned away", err)
	}
	h.Wait() // returns: the client's connection is closed by the failed Mount
	// Stopped: the rendezvous is free again.
	h3, _, err := Claim(id, true)
	if err != nil || h3 == nil {
		t.Fatalf("Claim after Stop = %v, %v; want a new holder", h3, err)
	}
	h3.Stop()
}

// TestClaimOtherUser: a rendezvous held by a process of another uid (here:
// an identity naming a uid that is not ours) is never used.
func TestClaimOtherUser(t *testing.T) {
	id := testIdentity(t)
	id.UID = os.Getuid() + 1
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: id.Name(), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h, c, err := Claim(id, true)
	if h != nil || c != nil || err == nil || !strings.Contains(err.Error(), "uid "+strconv.Itoa(os.Getuid())) {
		t.Fatalf("Claim of a name held by another uid = %v, %v, %v; want an error naming the holder's uid", h, c, err)
	}
}

// TestServesClones: a holder whose mount can be cloned hands a detached
// mount to each client once it is open; without the right to clone mounts
// (not root here, and outside a user namespace of our own) Prepare fails and
// clients are told why.
func TestServesClones(t *testing.T) {
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
	if os.Geteuid() == 0 {
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
	if os.Geteuid() == 0 {
		if readyErr != nil || err != nil {
			t.Fatalf("as root: Prepare = %v, Mount = %v; want a mount", readyErr, err)
		}
		var st os.FileInfo
		if st, err = mnt.Stat(); err != nil || !st.IsDir() {
			t.Errorf("the shared mount's root: %v, %v; want a directory", st, err)
		}
		mnt.Close()
		if h.StopIfUnused() {
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
		go func() { h.Linger(); close(lingered) }()
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
	if readyErr == nil || err == nil || !strings.Contains(err.Error(), "cloning") {
		t.Fatalf("unprivileged: Prepare = %v, Mount = %v; want both to fail on cloning", readyErr, err)
	}
}
