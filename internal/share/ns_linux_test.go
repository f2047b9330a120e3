package share

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNSRendezvous(t *testing.T) {
	name := NSName(os.Getuid(), []byte("secret"), "key", int(time.Now().UnixNano()%1000))
	lfd, err := ListenNS(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenNS(name); err != unix.EADDRINUSE {
		t.Fatalf("a second bind: %v, want EADDRINUSE", err)
	}
	h, err := ServeNS(os.NewFile(uintptr(lfd), "l"), "key", []byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DialNS(name, "other key", os.Getuid(), time.Second); err == nil {
		t.Errorf("a request with the wrong key was answered")
	}
	j, err := DialNS(name, "key", os.Getuid(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(j.Join) != `{"x":1}` {
		t.Errorf("join %q", j.Join)
	}
	if err := unix.PidfdSendSignal(j.PidFD, 0, nil, 0); err != nil {
		t.Errorf("the pidfd received does not name a live process: %v", err)
	}
	lingered := make(chan struct{})
	go func() { h.Linger(); close(lingered) }()
	select {
	case <-lingered:
		t.Fatal("Linger returned while a client is connected")
	case <-time.After(100 * time.Millisecond):
	}
	j.Conn.Close()
	unix.Close(j.PidFD)
	select {
	case <-lingered:
	case <-time.After(5 * time.Second):
		t.Fatal("Linger did not return once the client left")
	}
}

func TestNSNameNeedsTheSecret(t *testing.T) {
	if NSName(1000, []byte("a"), "k", 0) == NSName(1000, []byte("b"), "k", 0) {
		t.Errorf("the name does not depend on the secret")
	}
	id := Identity{UID: 1, Dev: 2, Ino: 3}
	if NSKey(id, "plan1") == NSKey(id, "plan2") {
		t.Errorf("the key does not depend on the plan")
	}
}
