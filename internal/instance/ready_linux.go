package instance

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ReadyFD is the descriptor on which a detached launch started by Start
// finds the socket of the readiness handshake.
const ReadyFD = 3

// ackByte is what Start answers once the instance's record is written.
const ackByte = 'k'

// Ready is what an instance's init says once it is up: which namespaces
// it has of its own, and what a launch joining it needs.
type Ready struct {
	Namespaces Namespaces      `json:"namespaces"`
	Join       json.RawMessage `json:"join"`
}

// SendReady is the init's side of the handshake on conn: it sends r with
// a pidfd of this very process, and waits up to timeout for the answer
// that its record is written. An error means the instance must end (its
// `instance start` is gone or gave up, and nothing records it).
func SendReady(conn *os.File, r *Ready, timeout time.Duration) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the instance's readiness: %w", err)
	}
	if len(data) > maxRecord {
		return fmt.Errorf("the instance's readiness is larger than %d bytes", maxRecord)
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("opening a pidfd of the instance's init: %w", err)
	}
	defer unix.Close(pidfd)
	msg := make([]byte, 4, 4+len(data))
	binary.BigEndian.PutUint32(msg, uint32(len(data)))
	msg = append(msg, data...)
	n, err := unix.SendmsgN(int(conn.Fd()), msg, unix.UnixRights(pidfd), nil, 0)
	if err != nil {
		return fmt.Errorf("sending the instance's readiness: %w", err)
	}
	for msg = msg[n:]; len(msg) > 0; msg = msg[n:] {
		if n, err = unix.Write(int(conn.Fd()), msg); err != nil && err != unix.EINTR {
			return fmt.Errorf("sending the instance's readiness: %w", err)
		}
		n = max(n, 0)
	}
	var ack [1]byte
	if err := readFD(int(conn.Fd()), ack[:], time.Now().Add(timeout)); err != nil || ack[0] != ackByte {
		return errors.New("instance start gave up before recording the instance")
	}
	return nil
}

// receiveReady is Start's side: it reads the init's Ready and pidfd from
// conn, waiting up to timeout. io.EOF: the launch ended without being
// ready.
func receiveReady(conn *os.File, timeout time.Duration) (*Ready, *Proc, uint64, error) {
	fd := int(conn.Fd())
	deadline := time.Now().Add(timeout)
	if err := waitReadable(fd, deadline); err != nil {
		return nil, nil, 0, err
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("reading the instance's readiness: %w", err)
	}
	var fds []int
	if oobn > 0 {
		cms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, cm := range cms {
				if got, err := unix.ParseUnixRights(&cm); err == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	closeAll := func() {
		for _, f := range fds {
			_ = unix.Close(f)
		}
	}
	if n == 0 {
		closeAll()
		return nil, nil, 0, io.EOF
	}
	if len(fds) != 1 || n < 4 {
		closeAll()
		return nil, nil, 0, errors.New("the instance's readiness came without its pidfd")
	}
	size := int(binary.BigEndian.Uint32(buf[:4]))
	if size > maxRecord {
		closeAll()
		return nil, nil, 0, fmt.Errorf("the instance's readiness is larger than %d bytes", maxRecord)
	}
	data := append([]byte(nil), buf[4:n]...)
	if len(data) < size {
		rest := make([]byte, size-len(data))
		if err := readFD(fd, rest, deadline); err != nil {
			closeAll()
			return nil, nil, 0, fmt.Errorf("reading the instance's readiness: %w", err)
		}
		data = append(data, rest...)
	}
	r := &Ready{}
	if err := json.Unmarshal(data[:size], r); err != nil {
		closeAll()
		return nil, nil, 0, fmt.Errorf("decoding the instance's readiness: %w", err)
	}
	p, st, err := ProcFromFD(fds[0])
	if err != nil {
		closeAll()
		return nil, nil, 0, err
	}
	return r, p, st, nil
}

// waitReadable waits until fd is readable (or at end-of-file), at most
// until deadline.
func waitReadable(fd int, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("no answer in time")
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting on the handshake: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// readFD fills buf from the blocking descriptor fd, waiting at most until
// deadline; end-of-file first is io.ErrUnexpectedEOF.
func readFD(fd int, buf []byte, deadline time.Time) error {
	for len(buf) > 0 {
		if err := waitReadable(fd, deadline); err != nil {
			return err
		}
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		buf = buf[n:]
	}
	return nil
}
