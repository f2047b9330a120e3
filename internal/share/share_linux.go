package share

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// replyOK and replyNo start the holder's one reply to a request.
const (
	replyOK = "ok"
	replyNo = "no "
)

// Claim takes the rendezvous for id: it returns a Holder when no other
// launch holds it (bound and listening; the caller mounts the image and
// calls Ready), or a Client connected to the launch that does (its request
// sent; the caller calls Mount). holdOK false never makes a Holder: the
// caller only wants to be a client. Both nil and no error: no holder
// (and none wanted). An error means the rendezvous cannot be used at all;
// the caller mounts the image on its own.
func Claim(id Identity, holdOK bool) (*Holder, *Client, error) {
	addr := &net.UnixAddr{Name: id.Name(), Net: "unixpacket"}
	for try := 0; try < 3; try++ {
		if holdOK {
			l, err := net.ListenUnix("unixpacket", addr)
			if err == nil {
				l.SetUnlinkOnClose(false) // abstract: nothing to unlink
				return newHolder(l, id), nil, nil
			}
			if !errors.Is(err, unix.EADDRINUSE) {
				return nil, nil, fmt.Errorf("claiming %s: %w", id.Name(), err)
			}
		}
		c, err := dial(addr, id)
		if err == nil {
			return nil, c, nil
		}
		if !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.ENOENT) {
			return nil, nil, err
		}
		if !holdOK {
			return nil, nil, nil
		}
		// The holder closed between our bind and our connect: try again.
	}
	return nil, nil, nil
}

// peerUID returns the uid of the process at the other end of c, as the
// kernel recorded it when the connection (or the listener) was made.
func peerUID(c *net.UnixConn) (int, int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, serr
	}
	return int(cred.Uid), int(cred.Pid), nil
}

// Client is a launch that uses another launch's mount.
type Client struct {
	c *net.UnixConn
	// HolderPid is the holder's pid (as this process sees it).
	HolderPid int
	lost      chan struct{}
}

// dial connects to the holder at addr, checks that it runs as the same
// user (anyone can bind an abstract name first), and sends the request.
func dial(addr *net.UnixAddr, id Identity) (*Client, error) {
	c, err := net.DialUnix("unixpacket", nil, addr)
	if err != nil {
		return nil, err
	}
	uid, pid, err := peerUID(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("asking %s who holds it: %w", addr.Name, err)
	}
	if uid != id.UID {
		c.Close()
		return nil, fmt.Errorf("%s is held by pid %d of uid %d, not by uid %d", addr.Name, pid, uid, id.UID)
	}
	if _, err := c.Write([]byte(id.Key())); err != nil {
		c.Close()
		return nil, fmt.Errorf("asking pid %d for the image mount: %w", pid, err)
	}
	return &Client{c: c, HolderPid: pid, lost: make(chan struct{})}, nil
}

// Mount waits up to timeout for the holder's answer and returns a detached
// clone of its image mount, to be attached with move_mount(2). On an error
// the connection is closed and the caller mounts the image itself.
func (cl *Client) Mount(timeout time.Duration) (*os.File, error) {
	_ = cl.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := cl.c.ReadMsgUnix(buf, oob)
	if err != nil || n == 0 {
		cl.Close()
		if err == nil {
			err = errors.New("the holder closed the connection")
		}
		return nil, fmt.Errorf("waiting for the image mount from pid %d: %w", cl.HolderPid, err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	reply := string(buf[:n])
	if reply != replyOK || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		cl.Close()
		return nil, fmt.Errorf("pid %d did not share its image mount: %s", cl.HolderPid, reply)
	}
	unix.CloseOnExec(fds[0])
	_ = cl.c.SetReadDeadline(time.Time{})
	go cl.watch()
	return os.NewFile(uintptr(fds[0]), "shared image mount"), nil
}

// watch closes lost when the holder goes away while this client runs.
func (cl *Client) watch() {
	buf := make([]byte, 16)
	for {
		if _, err := cl.c.Read(buf); err != nil {
			close(cl.lost)
			return
		}
	}
}

// Lost is closed when the holder is gone (it was killed: a holder that
// ends normally waits for its clients).
func (cl *Client) Lost() <-chan struct{} { return cl.lost }

// Close ends the client's use of the holder's mount.
func (cl *Client) Close() {
	if cl != nil {
		cl.c.Close()
	}
}

// Holder serves clones of its image mount to other launches.
type Holder struct {
	l  *net.UnixListener
	id Identity

	ready chan struct{} // closed (with mu held) by Ready or Stop
	mu    sync.Mutex
	seed  int   // a detached clone of the mount; -1 when there is none
	err   error // why there is no seed
	conns map[*net.UnixConn]bool
	idle  *sync.Cond // signalled when conns shrinks
	done  bool       // stopped: the listener and the seed are closed
}

func newHolder(l *net.UnixListener, id Identity) *Holder {
	h := &Holder{l: l, id: id, ready: make(chan struct{}), seed: -1, conns: map[*net.UnixConn]bool{}}
	h.idle = sync.NewCond(&h.mu)
	go h.accept()
	return h
}

// Ready starts serving the mount attached at path (in the caller's mount
// namespace): it keeps a detached clone of it, from which every client
// gets a clone of its own. A kernel that cannot clone a detached mount
// (before Linux 6.15) makes this fail; the holder then turns clients away.
func (h *Holder) Ready(path string) error {
	seed, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		var probe int
		if probe, err = cloneOf(seed); err == nil {
			unix.Close(probe)
		} else {
			unix.Close(seed)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.err = fmt.Errorf("cloning the image mount: %w", err)
	} else if h.done {
		unix.Close(seed)
	} else {
		h.seed = seed
	}
	h.markReady()
	return h.err
}

func (h *Holder) markReady() {
	select {
	case <-h.ready:
	default:
		close(h.ready)
	}
}

// cloneOf makes a detached clone of the detached mount seed.
func cloneOf(seed int) (int, error) {
	return unix.OpenTree(seed, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
}

// accept takes connections until the listener is closed.
func (h *Holder) accept() {
	for {
		c, err := h.l.AcceptUnix()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns[c] = true
		h.mu.Unlock()
		go h.serve(c)
	}
}

// serve answers one client and then holds its connection until it closes.
func (h *Holder) serve(c *net.UnixConn) {
	defer h.drop(c)
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	uid, _, err := peerUID(c)
	if err != nil || uid != h.id.UID {
		return // another user: never theirs
	}
	if string(buf[:n]) != h.id.Key() {
		_, _ = c.Write([]byte(replyNo + "another image or version"))
		return
	}
	<-h.ready
	h.mu.Lock()
	seed, why := h.seed, h.err
	var fd int
	if seed >= 0 {
		fd, err = cloneOf(seed)
		if err != nil {
			why = fmt.Errorf("cloning the image mount: %w", err)
		}
	} else if why == nil {
		why = errors.New("the holder is stopping")
	}
	h.mu.Unlock()
	if seed < 0 || err != nil {
		_, _ = c.Write([]byte(replyNo + why.Error()))
		return
	}
	_, _, err = c.WriteMsgUnix([]byte(replyOK), unix.UnixRights(fd), nil)
	unix.Close(fd)
	if err != nil {
		return
	}
	for {
		if _, err := c.Read(buf); err != nil {
			return // the client is gone
		}
	}
}

// drop forgets a finished connection.
func (h *Holder) drop(c *net.UnixConn) {
	c.Close()
	h.mu.Lock()
	delete(h.conns, c)
	h.idle.Broadcast()
	h.mu.Unlock()
}

// Stop takes no more clients: a later launch claims the rendezvous anew.
// Clients already connected keep the mount; Wait waits for them.
func (h *Holder) Stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.stopLocked()
	h.mu.Unlock()
}

// stopLocked is Stop with h.mu held.
func (h *Holder) stopLocked() {
	if !h.done {
		h.done = true
		h.l.Close()
		if h.seed >= 0 {
			unix.Close(h.seed)
			h.seed = -1
		}
	}
	h.markReady()
}

// StopIfUnused stops the holder, as Stop, when no launch can be using its
// mount: none is connected, or none was ever handed a mount (Ready was not
// called, or failed). It reports whether it stopped.
func (h *Holder) StopIfUnused() bool {
	if h == nil {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) > 0 && h.seed >= 0 {
		return false
	}
	h.stopLocked()
	return true
}

// Linger keeps serving for as long as any launch is connected, so that
// launches that start while the mount is in use join it too, and returns
// once none is: the holder is then stopped.
func (h *Holder) Linger() {
	h.mu.Lock()
	for len(h.conns) > 0 && h.seed >= 0 {
		h.idle.Wait()
	}
	h.stopLocked()
	for len(h.conns) > 0 { // turned away, or just disconnecting
		h.idle.Wait()
	}
	h.mu.Unlock()
}

// Clients returns how many launches are connected now.
func (h *Holder) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Wait returns once every client's connection is closed. Call Stop first.
func (h *Holder) Wait() {
	if h == nil {
		return
	}
	h.mu.Lock()
	for len(h.conns) > 0 {
		h.idle.Wait()
	}
	h.mu.Unlock()
}
