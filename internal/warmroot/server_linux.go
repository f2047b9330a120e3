package warmroot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/share"
)

// requestWait is how long a connected launch has to send its request.
const requestWait = 2 * time.Second

// Clients counts the launches that joined: the holder of the image mount
// (internal/share) keeps the mount and its server while any is connected,
// and closes their connections when the server dies.
type Clients interface {
	// Admit counts c as a client from now on, or says why not (the
	// holder is stopping).
	Admit(c *net.UnixConn) error
	// Release forgets c, which is closed.
	Release(c *net.UnixConn)
}

// Server answers the launches that ask for its container.
type Server struct {
	l       *net.UnixListener
	uid     int
	request []byte
	answer  []byte // header and body of the yes
	clients Clients

	mu            sync.Mutex
	userNS, mntNS *os.File // closed once Close was called and no answer uses them
	users         int
	closed        bool
}

// Listen binds the abstract socket name (without its leading NUL).
func Listen(name string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on @%s: %w", name, err)
	}
	return l, nil
}

// Serve answers, on l, every connection of uid that sends request with
// body (an encoded Reply) and the namespaces userNS and mntNS, which it
// owns from now on, as it owns l. It stops when Close is called.
func Serve(l *net.UnixListener, uid int, request, body []byte, userNS, mntNS *os.File, clients Clients) *Server {
	s := &Server{l: l, uid: uid, request: request, clients: clients, userNS: userNS, mntNS: mntNS,
		answer: append(header(yesMagic, len(body)), body...)}
	go s.accept()
	return s
}

// Closed reports whether Close was called (by its holder, or by a launch's
// stale notice).
func (s *Server) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops taking connections; the launches that joined keep what
// they have.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.l.Close()
		s.release()
	}
	return nil
}

// release closes the namespaces once nothing needs them; s.mu is held.
func (s *Server) release() {
	if s.closed && s.users == 0 && s.userNS != nil {
		s.userNS.Close()
		s.mntNS.Close()
		s.userNS, s.mntNS = nil, nil
	}
}

// accept takes connections until the listener is closed; another user's
// is closed at once (anyone can connect to an abstract name).
func (s *Server) accept() {
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.Close()
			}
			return
		}
		if uid, _, err := share.PeerUID(c); err != nil || uid != s.uid {
			c.Close()
			continue
		}
		go s.serve(c)
	}
}

// serve answers one connection and then holds it until it closes.
func (s *Server) serve(c *net.UnixConn) {
	if !s.matches(c) {
		_, _ = c.Write(header(noMagic, 0))
		c.Close()
		return
	}
	if err := s.clients.Admit(c); err != nil {
		_, _ = c.Write(header(noMagic, 0))
		c.Close()
		return
	}
	defer s.clients.Release(c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_, _ = c.Write(header(noMagic, 0))
		return
	}
	s.users++
	rights := unix.UnixRights(int(s.userNS.Fd()), int(s.mntNS.Fd()))
	s.mu.Unlock()
	_, _, err := c.WriteMsgUnix(s.answer[:8], rights, nil)
	s.mu.Lock()
	s.users--
	s.release()
	s.mu.Unlock()
	if err != nil {
		return
	}
	if _, err := c.Write(s.answer[8:]); err != nil {
		return
	}
	// Until the launch is gone. A launch that found a file of the
	// container changed says so (staleNotice): the container is then
	// served no more, and the name is free for the new one.
	b := make([]byte, 1)
	for {
		if _, err := c.Read(b); err != nil {
			return
		}
		if b[0] == staleNotice {
			s.Close()
		}
	}
}

// staleNotice is the byte a launch sends when it will not join because a
// file of the container changed.
const staleNotice = 'S'

// matches reads the request within requestWait and compares it.
func (s *Server) matches(c *net.UnixConn) bool {
	_ = c.SetReadDeadline(time.Now().Add(requestWait))
	defer c.SetReadDeadline(time.Time{})
	h := make([]byte, 8)
	if _, err := io.ReadFull(c, h); err != nil || string(h[:4]) != requestMagic {
		return false
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n != uint32(len(s.request)) || n > MaxRequest {
		return false
	}
	req := make([]byte, n)
	if _, err := io.ReadFull(c, req); err != nil {
		return false
	}
	return bytes.Equal(req, s.request)
}
