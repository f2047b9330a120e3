package share

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Shared namespaces (--sharens): the first launch of an image by a user in
// a kill domain, with a given mount plan, holds its stage's namespaces open
// for the next ones, which join them (internal/container, sharens_linux.go).
// The rendezvous is named as the shared mount's (Identity, the user's
// secret) with the plan mixed in; what the holder hands out is a pidfd of
// its stage and what a joining launch needs, and each client's connection,
// kept open while it runs, keeps the holder alive.

// NSVersion is the protocol of the shared-namespace rendezvous.
const NSVersion = "launch-sharens/1"

// nsRequestWait is how long a holder waits for a client's request.
const nsRequestWait = 2 * time.Second

// maxNSJoin bounds what a holder hands out.
const maxNSJoin = 1 << 20

// NSKey is the key of the shared namespaces of id with the mount plan
// plan (any string that differs when the mounts would).
func NSKey(id Identity, plan string) string {
	sum := sha256.Sum256([]byte(plan))
	return NSVersion + " " + id.Key() + " plan=" + hex.EncodeToString(sum[:])
}

// NSName is the abstract socket name of generation gen of the rendezvous
// for key, under the user's secret.
func NSName(uid int, secret []byte, key string, gen int) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	fmt.Fprintf(m, "\x00generation=%d", gen)
	return fmt.Sprintf("@launch/sharens/%d/%s", uid, hex.EncodeToString(m.Sum(nil)[:16]))
}

// ErrNSTaken: the name is bound by another user's process (pass it over).
var ErrNSTaken = errors.New("the rendezvous name is another user's")

// ListenNS binds name: the caller becomes the holder, with the
// listening socket's descriptor (close-on-exec; the caller owns it), or
// gets unix.EADDRINUSE when another process holds it.
func ListenNS(name string) (int, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return -1, unix.EADDRINUSE
		}
		return -1, fmt.Errorf("binding the rendezvous %s: %w", name, err)
	}
	defer l.Close()
	f, err := l.File() // a dup
	if err != nil {
		return -1, fmt.Errorf("taking the rendezvous socket %s: %w", name, err)
	}
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return -1, fmt.Errorf("duplicating the rendezvous socket %s: %w", name, err)
	}
	return fd, nil
}

// NSJoin is what a client received: a pidfd of the holder's stage, what
// to join with, and the connection, to keep open while it runs.
type NSJoin struct {
	PidFD int
	Join  []byte
	Conn  *os.File
}

// DialNS asks the holder of name for its namespaces, waiting up to
// timeout; ErrNSTaken when another user holds the name.
func DialNS(name, key string, uid int, timeout time.Duration) (*NSJoin, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if u, _, err := PeerUID(c); err != nil {
		return nil, err
	} else if u != uid {
		return nil, ErrNSTaken
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := []byte(key + "\n")
	if _, err := c.Write(req); err != nil {
		return nil, fmt.Errorf("asking for the shared namespaces: %w", err)
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("reading the shared namespaces: %w", err)
	}
	var fds []int
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			if got, err := unix.ParseUnixRights(&cm); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	fail := func(err error) (*NSJoin, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	if len(fds) != 1 || n < 4 {
		return fail(errors.New("the holder of the shared namespaces turned this launch away"))
	}
	size := int(binary.BigEndian.Uint32(buf[:4]))
	if size > maxNSJoin {
		return fail(errors.New("the holder's answer is too large"))
	}
	data := append([]byte(nil), buf[4:n]...)
	if len(data) < size {
		rest := make([]byte, size-len(data))
		if _, err := io.ReadFull(c, rest); err != nil {
			return fail(fmt.Errorf("reading the shared namespaces: %w", err))
		}
		data = append(data, rest...)
	}
	_ = c.SetDeadline(time.Time{})
	f, err := c.File() // a dup that outlives c
	if err != nil {
		return fail(err)
	}
	unix.CloseOnExec(fds[0])
	return &NSJoin{PidFD: fds[0], Join: data[:size], Conn: f}, nil
}

// NSHolder serves a stage's namespaces to the user's other launches.
type NSHolder struct {
	l     *net.UnixListener
	key   string
	pidfd int
	join  []byte

	mu      sync.Mutex
	clients map[*net.UnixConn]bool
	stopped bool
	empty   chan struct{} // signalled when the last client leaves
}

// ServeNS serves on the listening socket l (from ListenNS, passed to the
// stage) a pidfd of this process and join to every launch of the user
// that asks with key.
func ServeNS(l *os.File, key string, join []byte) (*NSHolder, error) {
	ln, err := net.FileListener(l)
	l.Close()
	if err != nil {
		return nil, fmt.Errorf("serving the shared namespaces: %w", err)
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("serving the shared namespaces: %w", err)
	}
	h := &NSHolder{l: ln.(*net.UnixListener), key: key, pidfd: pidfd, join: join,
		clients: map[*net.UnixConn]bool{}, empty: make(chan struct{}, 1)}
	go h.accept()
	return h, nil
}

func (h *NSHolder) accept() {
	for {
		c, err := h.l.AcceptUnix()
		if err != nil {
			return
		}
		go h.serve(c)
	}
}

func (h *NSHolder) serve(c *net.UnixConn) {
	if u, _, err := PeerUID(c); err != nil || u != os.Getuid() {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(nsRequestWait))
	req := make([]byte, len(h.key)+1)
	if _, err := io.ReadFull(c, req); err != nil || string(req) != h.key+"\n" {
		c.Close()
		return
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.clients[c] = true
	h.mu.Unlock()
	msg := make([]byte, 4, 4+len(h.join))
	binary.BigEndian.PutUint32(msg, uint32(len(h.join)))
	msg = append(msg, h.join...)
	_ = c.SetDeadline(time.Time{})
	if _, _, err := c.WriteMsgUnix(msg, unix.UnixRights(h.pidfd), nil); err != nil {
		h.drop(c)
		return
	}
	// The client keeps the connection for as long as it runs.
	var b [1]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			break
		}
	}
	h.drop(c)
}

func (h *NSHolder) drop(c *net.UnixConn) {
	c.Close()
	h.mu.Lock()
	delete(h.clients, c)
	n := len(h.clients)
	h.mu.Unlock()
	if n == 0 {
		select {
		case h.empty <- struct{}{}:
		default:
		}
	}
}

// Linger stops taking new clients and returns once none is left.
func (h *NSHolder) Linger() {
	h.mu.Lock()
	h.stopped = true
	h.l.Close()
	n := len(h.clients)
	h.mu.Unlock()
	for n > 0 {
		<-h.empty
		h.mu.Lock()
		n = len(h.clients)
		h.mu.Unlock()
	}
}
