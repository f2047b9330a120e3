package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Holder serves clones of its image mount to other launches.
type Holder struct {
	l  *net.UnixListener
	id Identity
	// Name is the rendezvous name it holds.
	Name string

	probe    sync.Once
	probeErr error // why this kernel cannot clone a detached mount

	open   chan struct{} // closed (with mu held) by Open or by stopping
	mu     sync.Mutex
	seed   int   // a detached clone of the mount; -1 when there is none
	err    error // why there is no seed
	opened bool  // Open was called: clients may hold clones
	conns  map[*net.UnixConn]bool
	idle   *sync.Cond // signalled when conns changes, and by Linger's timer and quit
	done   bool       // stopped: the listener and the seed are closed
	warm   bool       // Linger was called: the holder's own launch is done
	// idleSince is when the last client left (or Linger began).
	idleSince time.Time
	quit      bool // Linger's quit was closed
	// closers are stopped with the holder (AddCloser).
	closers []io.Closer
	// offers takes what clients offer (TakeOffers); nil: none is taken.
	offers func(body []byte, fds []int)
}

func newHolder(l *net.UnixListener, id Identity, name string) *Holder {
	h := &Holder{l: l, id: id, Name: name, open: make(chan struct{}), seed: -1, conns: map[*net.UnixConn]bool{}}
	h.idle = sync.NewCond(&h.mu)
	go h.accept()
	return h
}

// Prepare keeps a detached clone of the mount attached at path (in the
// caller's mount namespace), from which every client will get a clone of
// its own once Open is called. Clients wait until then.
func (h *Holder) Prepare(path string) error {
	seed, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		err = fmt.Errorf("cloning the image mount: %w", err)
	} else if probe, perr := cloneOf(seed); perr != nil {
		// Before Linux 6.15 only mounts of the caller's own namespace can
		// be cloned, not detached ones: turn clients away at once.
		unix.Close(seed)
		err = fmt.Errorf("cloning a detached mount: %w", perr)
		if errors.Is(perr, unix.EINVAL) {
			err = fmt.Errorf("%w (it needs Linux 6.15 or later)", err)
		}
	} else {
		unix.Close(probe)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.err = err
		h.stopLocked()
	case h.done:
		unix.Close(seed)
	default:
		h.seed = seed
	}
	return h.err
}

// Open hands out clones from now on: call it once the holder itself is
// committed to running (its payload started), so that a holder that fails
// before never leaves a client depending on its mount.
func (h *Holder) Open() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done && h.seed >= 0 {
		h.opened = true
	}
	h.markOpen()
}

// markOpen lets waiting clients go on; h.mu is held.
func (h *Holder) markOpen() {
	select {
	case <-h.open:
	default:
		close(h.open)
	}
}

// canClone finds out once whether this kernel clones detached mounts
// (Linux 6.15 and later; before, only mounts of the caller's own mount
// namespace), with a throw-away detached tmpfs, so that a client on an
// older kernel is turned away at once, not after the holder's mount reads.
func (h *Holder) canClone() error {
	h.probe.Do(func() {
		err := cloneDetached()
		switch {
		case errors.Is(err, unix.EINVAL):
			h.probeErr = fmt.Errorf("cloning a detached mount: %w (it needs Linux 6.15 or later)", err)
		case err != nil:
			h.probeErr = fmt.Errorf("cloning a detached mount: %w", err)
		}
	})
	return h.probeErr
}

// cloneDetached makes a detached tmpfs and a clone of it, and closes both.
func cloneDetached() error {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return err
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(m)
	c, err := cloneOf(m)
	if err != nil {
		return err
	}
	return unix.Close(c)
}

// cloneOf makes a detached clone of the detached mount seed.
func cloneOf(seed int) (int, error) {
	return unix.OpenTree(seed, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
}

// requestWait is how long a connected launch has to send its request.
const requestWait = 2 * time.Second

// accept takes connections until the listener is closed. Another user's
// connection is closed at once: anyone can connect to an abstract name.
// On any other failure the holder stops, which frees the name for a new
// holder rather than leave launches waiting on a listener nobody accepts.
func (h *Holder) accept() {
	for {
		c, err := h.l.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				h.Stop()
			}
			return
		}
		if uid, _, err := PeerUID(c); err != nil || uid != h.id.UID {
			c.Close()
			continue
		}
		go h.serve(c)
	}
}

// serve answers one client and then holds its connection until it closes.
// Only a connection that sent the right request within requestWait counts
// as a client (keeps the holder from stopping).
func (h *Holder) serve(c *net.UnixConn) {
	defer h.drop(c)
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(requestWait))
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if string(buf[:n]) != h.id.Key() {
		_, _ = c.Write([]byte(replyNo + "another image or version"))
		return
	}
	h.mu.Lock()
	var why error
	if h.done {
		why = h.whyNot()
	} else {
		h.conns[c] = true
		h.idle.Broadcast()
	}
	h.mu.Unlock()
	if why != nil {
		_, _ = c.Write([]byte(replyNo + why.Error()))
		return
	}
	if err := h.canClone(); err != nil {
		_, _ = c.Write([]byte(replyNo + err.Error()))
		return
	}
	<-h.open
	fd, warm, why := h.clone()
	if why != nil {
		_, _ = c.Write([]byte(replyNo + why.Error()))
		return
	}
	reply := replyOK
	if warm {
		reply = replyWarm
	}
	_, _, err = c.WriteMsgUnix([]byte(reply), unix.UnixRights(fd), nil)
	unix.Close(fd)
	if err != nil {
		return
	}
	h.readOffers(c) // until the client is gone
}

// offerMagic starts a client's offer (Client.Offer): the magic and a
// 32-bit length in one message with the descriptors, then the body in the
// next.
const offerMagic = "LWO1"

// maxOffer bounds an offer's body (a message of the connection must fit
// the socket's buffer anyway).
const maxOffer = 1 << 20

// readOffers reads c until it closes, handing each offer it carries to the
// function TakeOffers set; anything else is dropped.
func (h *Holder) readOffers(c *net.UnixConn) {
	head := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(head, oob)
		if err != nil || n == 0 {
			return // the client is gone
		}
		fds := rightsOf(oob[:oobn])
		h.mu.Lock()
		take := h.offers
		h.mu.Unlock()
		if take != nil && n == 8 && string(head[:4]) == offerMagic {
			size := int(binary.LittleEndian.Uint32(head[4:8]))
			if size <= maxOffer {
				body := make([]byte, size)
				if m, err := c.Read(body); err == nil && m == size {
					take(body, fds)
					continue
				}
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// rightsOf returns the descriptors that came with a message.
func rightsOf(oob []byte) []int {
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob); err == nil {
		for i := range msgs {
			if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	return fds
}

// TakeOffers has take called with what clients offer from now on (the
// body and the descriptors, which take owns); until then, and once the
// holder stops, offers are dropped.
func (h *Holder) TakeOffers(take func(body []byte, fds []int)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		h.offers = take
	}
}

// clone makes a client's clone of the mount, or says why there is none;
// warm reports that the holder's own launch is done (Linger).
func (h *Holder) clone() (fd int, warm bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.opened && h.seed >= 0:
		fd, err := cloneOf(h.seed)
		if err != nil {
			return -1, false, fmt.Errorf("cloning the image mount: %w", err)
		}
		return fd, h.warm, nil
	}
	return -1, false, h.whyNot()
}

// whyNot says why no clone is handed out; h.mu is held.
func (h *Holder) whyNot() error {
	if h.err != nil {
		return h.err
	}
	return errors.New("the holder is stopping")
}

// Admit counts c, a connection to another server of this holder's (a
// launch that joined its whole container: internal/warmroot), as a client
// of the mount from now on, or says why not: the holder is stopping, or
// has not handed out its mount yet (Open). Release forgets it.
func (h *Holder) Admit(c *net.UnixConn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || !h.opened {
		return h.whyNot()
	}
	h.conns[c] = true
	h.idle.Broadcast()
	return nil
}

// Release forgets a client that Admit counted, and closes its connection.
func (h *Holder) Release(c *net.UnixConn) { h.drop(c) }

// AddCloser has c closed when the holder stops taking clients (at once if
// it has stopped already).
func (h *Holder) AddCloser(c io.Closer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		c.Close()
		return
	}
	h.closers = append(h.closers, c)
}

// drop forgets a finished connection.
func (h *Holder) drop(c *net.UnixConn) {
	c.Close()
	h.mu.Lock()
	delete(h.conns, c)
	if len(h.conns) == 0 {
		h.idleSince = time.Now()
	}
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
		for _, c := range h.closers {
			c.Close()
		}
		h.closers = nil
		h.offers = nil
	}
	h.markOpen()
}

// StopIfUnused stops the holder, as Stop, unless a launch may be using its
// mount (one is connected and Open was called) or, with warm, unless the
// mount can be kept for later launches (Open was called: Linger with a
// window). It reports whether it stopped.
func (h *Holder) StopIfUnused(warm bool) bool {
	if h == nil {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if (len(h.conns) > 0 || warm) && h.opened && !h.done {
		return false
	}
	h.stopLocked()
	return true
}

// Linger keeps serving for as long as any launch is connected, so that
// launches that start while the mount is in use join it too, and then for
// window more after the last one left (the mount and its page cache stay
// warm for the next launch of the image, which joins it: a client that
// connects meanwhile starts the count again once it is gone). It returns
// once the window has passed with no client, or, when none is connected,
// once quit is closed (the job step ended, a terminating signal); the
// holder is then stopped. window 0: no warm window.
func (h *Holder) Linger(window time.Duration, quit <-chan struct{}) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-quit:
			h.mu.Lock()
			h.quit = true
			h.idle.Broadcast()
			h.mu.Unlock()
		case <-stop:
		}
	}()
	h.mu.Lock()
	h.warm = true
	h.idleSince = time.Now()
	for !h.done {
		if len(h.conns) > 0 {
			h.idle.Wait()
			continue
		}
		left := time.Until(h.idleSince.Add(window))
		if h.quit || left <= 0 {
			break
		}
		t := time.AfterFunc(left, func() {
			h.mu.Lock()
			h.idle.Broadcast()
			h.mu.Unlock()
		})
		h.idle.Wait()
		t.Stop()
	}
	h.stopLocked()
	for len(h.conns) > 0 { // turned away, or just disconnecting
		h.idle.Wait()
	}
	h.mu.Unlock()
}

// Abandon stops the holder and closes every client's connection, so that
// each client learns that the mount is gone (Client.Lost): its FUSE
// server died, and the clones it handed out no longer read.
func (h *Holder) Abandon() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopLocked()
	for c := range h.conns {
		c.Close()
	}
}
