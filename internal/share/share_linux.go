package share

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/sys/unix"
)

// replyOK and replyNo start the holder's one reply to a request.
const (
	replyOK   = "ok"
	replyWarm = "ok warm" // replyOK from a holder whose own launch is done
	replyNo   = "no "
)

// errForeign is the error of a rendezvous name that a process of another
// user holds.
var errForeign = errors.New("held by another user")

// Claim takes the rendezvous for id: it returns a Holder when no other
// launch holds it (bound and listening; the caller mounts the image and
// calls Prepare, then Open), or a Client connected to the launch that does (its request
// sent; the caller calls Mount). holdOK false never makes a Holder: the
// caller only wants to be a client. Both nil and no error: no holder
// (and none wanted). An error means the rendezvous cannot be used at all;
// the caller mounts the image on its own. A name that another user holds
// is passed over for the next generation (Identity.Name).
func Claim(id Identity, holdOK bool) (*Holder, *Client, error) {
	var foreign []string
	for gen := 0; gen < Generations; gen++ {
		h, c, err := claimName(id, id.Name(gen), holdOK)
		if errors.Is(err, errForeign) {
			foreign = append(foreign, err.Error())
			continue
		}
		return h, c, err
	}
	return nil, nil, fmt.Errorf("every rendezvous name of this image is held by another user: %s", strings.Join(foreign, "; "))
}

// claimName is Claim for the one rendezvous name.
func claimName(id Identity, name string, holdOK bool) (*Holder, *Client, error) {
	addr := &net.UnixAddr{Name: name, Net: "unixpacket"}
	for try := 0; try < 3; try++ {
		if holdOK {
			l, err := net.ListenUnix("unixpacket", addr)
			if err == nil {
				l.SetUnlinkOnClose(false) // abstract: nothing to unlink
				return newHolder(l, id, name), nil, nil
			}
			if !errors.Is(err, unix.EADDRINUSE) {
				return nil, nil, fmt.Errorf("claiming %s: %w", name, err)
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

// PeerUID returns the uid and pid of the process at the other end of c, as the
// kernel recorded it when the connection (or the listener) was made.
func PeerUID(c *net.UnixConn) (int, int, error) {
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
