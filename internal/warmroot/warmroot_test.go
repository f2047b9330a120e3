package warmroot

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEncodeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Reply{
		{Pid: 1, Cwd: "/", Exec: "/bin/true", Argv: []string{"true"}},
		{Pid: 42, Joined: "VERBOSE: joined\n", Stale: "DEBUG:   changed: ", Lost: "WARNING: lost\n",
			Cwd: "/home/u", Exec: "/usr/bin/python3", Argv: []string{"python3", "-c", "", "a b"},
			Env:  []string{"A=1", "EMPTY=", "PATH=/bin"},
			Deps: []Dep{Object(f, &st), File(f, &st), Absent("/nonexistent"), Stat(f), Stat(filepath.Join(dir, "none"))}},
	} {
		body, err := r.Encode()
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		got, err := decode(body)
		if err != nil {
			t.Fatalf("decoding %q: %v", body, err)
		}
		if !reflect.DeepEqual(*got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", *got, r)
		}
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, r := range map[string]Reply{
		"relative cwd":   {Cwd: "home", Exec: "/bin/true", Argv: []string{"true"}},
		"no program":     {Cwd: "/", Argv: []string{"true"}},
		"no arguments":   {Cwd: "/", Exec: "/bin/true"},
		"NUL in env":     {Cwd: "/", Exec: "/bin/true", Argv: []string{"true"}, Env: []string{"A=\x00"}},
		"relative dep":   {Cwd: "/", Exec: "/bin/true", Argv: []string{"true"}, Deps: []Dep{Absent("etc/passwd")}},
		"NUL in program": {Cwd: "/", Exec: "/bin/\x00true", Argv: []string{"true"}},
	} {
		if _, err := r.Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDepLines(t *testing.T) {
	st := unix.Stat_t{Dev: 3, Ino: 7, Size: 11}
	st.Mtim = unix.Timespec{Sec: 1, Nsec: 2}
	st.Ctim = unix.Timespec{Sec: 3, Nsec: 4}
	for _, c := range []struct {
		dep  Dep
		want string
	}{
		{Object("/a", &st), "S 3 7"},
		{File("/a", &st), "F 3 7 11 1000000002 3000000004"},
		{Absent("/a"), "A"},
	} {
		if c.dep.Line != c.want || c.dep.Path != "/a" {
			t.Errorf("got %+v, want line %q", c.dep, c.want)
		}
	}
}

// clients counts admissions, as internal/share's Holder does.
type clients struct {
	mu     sync.Mutex
	refuse bool
	n      int
}

func (c *clients) Admit(*net.UnixConn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse {
		return errors.New("stopping")
	}
	c.n++
	return nil
}

func (c *clients) Release(conn *net.UnixConn) {
	conn.Close()
	c.mu.Lock()
	c.n--
	c.mu.Unlock()
}

// ask sends req to name and returns the answer's header, body and the
// number of descriptors that came with it.
func ask(t *testing.T, name string, req []byte) (string, []byte, int) {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append(header(requestMagic, len(req)), req...)); err != nil {
		t.Fatal(err)
	}
	h := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(2*4))
	n, oobn, _, _, err := c.ReadMsgUnix(h, oob)
	if err != nil || n != 8 {
		t.Fatalf("reading the answer: %d bytes, %v", n, err)
	}
	fds := 0
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		rights, _ := unix.ParseUnixRights(&m)
		for _, fd := range rights {
			unix.Close(fd)
			fds++
		}
	}
	size := int(h[4]) | int(h[5])<<8 | int(h[6])<<16 | int(h[7])<<24
	body := make([]byte, size)
	for got := 0; got < size; {
		k, err := c.Read(body[got:])
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		got += k
	}
	return string(h[:4]), body, fds
}

func TestServe(t *testing.T) {
	name := "launch-test/warmroot/" + strings.ReplaceAll(t.Name(), "/", "_") + "/" + filepath.Base(t.TempDir())
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	ns := func() *os.File {
		f, err := os.Open("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	rep := &Reply{Pid: os.Getpid(), Cwd: "/", Exec: "/bin/true", Argv: []string{"true"}, Env: []string{"A=1"}}
	cl := &clients{}
	body, err := rep.Encode()
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(l, os.Getuid(), []byte("the request"), body, ns(), ns(), cl)
	magic, body, fds := ask(t, name, []byte("the request"))
	if magic != yesMagic || fds != 2 {
		t.Fatalf("same request: %q with %d descriptors", magic, fds)
	}
	if got, err := decode(body); err != nil || !reflect.DeepEqual(got, rep) {
		t.Errorf("answer %+v, %v; want %+v", got, err, rep)
	}
	for _, req := range []string{"the reques", "the requesT", "the request and more", ""} {
		if magic, _, fds := ask(t, name, []byte(req)); magic != noMagic || fds != 0 {
			t.Errorf("request %q: %q with %d descriptors", req, magic, fds)
		}
	}
	cl.mu.Lock()
	cl.refuse = true
	cl.mu.Unlock()
	if magic, _, fds := ask(t, name, []byte("the request")); magic != noMagic || fds != 0 {
		t.Errorf("holder stopping: %q with %d descriptors", magic, fds)
	}
	srv.Close()
	if _, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: "@" + name, Net: "unix"}); err == nil {
		t.Error("still listening after Close")
	}
}

func TestOffer(t *testing.T) {
	rep := &Reply{Pid: 7, Cwd: "/", Exec: "/bin/true", Argv: []string{"true"}}
	body, err := rep.Encode()
	if err != nil {
		t.Fatal(err)
	}
	o := &Offer{Name: "launch/warm/1000/0123456789abcdef", Request: []byte("req\x00uest"), Body: body}
	got, err := DecodeOffer(o.Encode())
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": o.Encode()[:20],
		"trailing":  append(o.Encode(), 0),
		"no name":   (&Offer{Request: []byte("r"), Body: body}).Encode(),
		"bad body":  (&Offer{Name: "n", Request: []byte("r"), Body: []byte("x")}).Encode(),
		"long name": (&Offer{Name: strings.Repeat("n", 96), Request: []byte("r"), Body: body}).Encode(),
	} {
		if _, err := DecodeOffer(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
