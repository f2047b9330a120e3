package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Client is a launch that uses another launch's mount.
type Client struct {
	c *net.UnixConn
	// HolderPid is the holder's pid (as this process sees it).
	HolderPid int
	// Name is the rendezvous name it connected to.
	Name string
	// Warm is set by Mount when the holder's own launch was done: the
	// mount was kept warm for later launches (Holder.Linger).
	Warm bool
	lost chan struct{}
}

// dial connects to the holder at addr, checks that it runs as the same
// user (anyone can bind an abstract name first), and sends the request.
func dial(addr *net.UnixAddr, id Identity) (*Client, error) {
	c, err := net.DialUnix("unixpacket", nil, addr)
	if err != nil {
		return nil, err
	}
	uid, pid, err := PeerUID(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("asking %s who holds it: %w", addr.Name, err)
	}
	if uid != id.UID {
		c.Close()
		return nil, fmt.Errorf("%s is %w: pid %d of uid %d, not uid %d", addr.Name, errForeign, pid, uid, id.UID)
	}
	if _, err := c.Write([]byte(id.Key())); err != nil {
		c.Close()
		return nil, fmt.Errorf("asking pid %d for the image mount: %w", pid, err)
	}
	return &Client{c: c, HolderPid: pid, Name: addr.Name, lost: make(chan struct{})}, nil
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
	fds := rightsOf(oob[:oobn])
	reply := string(buf[:n])
	if reply != replyOK && reply != replyWarm || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		cl.Close()
		return nil, fmt.Errorf("pid %d did not share its image mount: %s", cl.HolderPid, reply)
	}
	unix.CloseOnExec(fds[0])
	cl.Warm = reply == replyWarm
	_ = cl.c.SetReadDeadline(time.Time{})
	go cl.watch()
	return os.NewFile(uintptr(fds[0]), "shared image mount"), nil
}

// WarmMount reports whether cl is not nil and its mount came from a
// holder whose own launch was done (Warm).
func (cl *Client) WarmMount() bool { return cl != nil && cl.Warm }

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

// Offer hands the holder something to keep and serve after this launch
// ends: body and the descriptors fds (a container of this launch's:
// internal/warmroot.Offer). The holder drops it when it takes none.
func (cl *Client) Offer(body []byte, fds []int) error {
	if len(body) > maxOffer {
		return fmt.Errorf("an offer of %d bytes, over %d", len(body), maxOffer)
	}
	head := make([]byte, 8)
	copy(head, offerMagic)
	binary.LittleEndian.PutUint32(head[4:], uint32(len(body)))
	if _, _, err := cl.c.WriteMsgUnix(head, unix.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("offering pid %d a container: %w", cl.HolderPid, err)
	}
	if _, err := cl.c.Write(body); err != nil {
		return fmt.Errorf("offering pid %d a container: %w", cl.HolderPid, err)
	}
	return nil
}

// Close ends the client's use of the holder's mount.
func (cl *Client) Close() {
	if cl != nil {
		cl.c.Close()
	}
}
