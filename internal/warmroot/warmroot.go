// Package warmroot serves a lingering launch's whole container to later
// launches of the very same request, which join it from launch's C
// constructor before any Go runtime starts (internal/preinit,
// warm_linux.c): no mounts, no Go start, two setns calls and an execve.
//
// The holder of a shared image mount (internal/share) keeps its mount
// warm after its payload is done; its stage is still in the user and
// mount namespaces of its container, the root assembled and pivoted into.
// When that container is the same for any launch of the same request
// (internal/container decides which are: no tmpfs, /proc or namespace of
// a launch's own, no writable layer, no GPU, not root), the stage also
// listens on an abstract socket named after the request that the
// constructor made for it, and answers a launch whose constructor sends
// the same request with:
//
//   - descriptors of its user and mount namespaces (SCM_RIGHTS);
//   - what its own payload was started with: program, arguments,
//     environment and working directory inside, which are a function of
//     the request and of the files below;
//   - the host files the container was made from (Dep): the image, every
//     bind source, launch.conf, /etc/passwd and /etc/group, --env-file
//     files; the joining side checks each with stat(2) and joins only if
//     none changed.
//
// The request, built by the constructor only, holds everything else the
// container and the payload's start depend on: the command line, the
// whole environment, the working directory, the uid, gid and groups,
// the launch binary's identity,
// and the process's cgroups (the kill domain: internal/share.Scope). The
// holder compares it byte for byte, and answers only its own uid (peer
// credentials; the constructor checks the holder's likewise), so a
// request never reaches another user's container, and a changed image or
// file is never served stale.
//
// Wire format, all integers little-endian: the request is "LW1\0", a
// 32-bit length and that many bytes. The answer is "LW1Y" (with the two
// descriptors) or "LW1N", a 32-bit length, and a body of NUL-terminated
// strings: holder pid, the joined line, the stale prefix, the lost line,
// working directory, program, then argument count and arguments,
// environment count and variables, dependency count (twice the number of
// dependencies) and, per dependency, its line and its path. A joining
// launch keeps its connection open until it exits: the holder counts it
// as a client (it keeps the image mount and its server until the last
// client is gone) and closes it when the image server dies. A launch that
// does not join because a file changed sends one byte, "S", before it
// closes: the stale container is then served no more, and the launch's
// own, made afresh, takes the name.
//
// It must not decide which containers may be joined, nor start or stop
// anything: internal/container does.
package warmroot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The limits the constructor keeps to (warm_linux.c).
const (
	// MaxRequest bounds a request.
	MaxRequest = 1 << 20
	// MaxReply bounds the body of an answer.
	MaxReply = 4 << 20
)

// The headers of the wire format.
const (
	requestMagic = "LW1\x00"
	yesMagic     = "LW1Y"
	noMagic      = "LW1N"
)

// Dep is a host file a container was made from, as the joining side checks
// it: Line says what must still hold of Path.
type Dep struct {
	Line string
	Path string
}

// Object is a dependency on path being the same object (device and inode)
// as st: a bind source, whose content the container sees live.
func Object(path string, st *unix.Stat_t) Dep {
	return Dep{Line: fmt.Sprintf("S %d %d", st.Dev, st.Ino), Path: path}
}

// File is a dependency on path being the same file with the same content
// as st (also size, modification and change times): a file that was read.
func File(path string, st *unix.Stat_t) Dep {
	return Dep{Line: fmt.Sprintf("F %d %d %d %d %d", st.Dev, st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()), Path: path}
}

// Absent is a dependency on path still not existing (an optional bind
// source, a launch.conf looked for).
func Absent(path string) Dep { return Dep{Line: "A", Path: path} }

// Stat is File of path as it is now, or Absent when it cannot be stat'ed.
func Stat(path string) Dep {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Absent(path)
	}
	return File(path, &st)
}

// Reply is what a holder answers a launch that joins it.
type Reply struct {
	// Pid is the holder's.
	Pid int
	// Joined is printed by the joining launch once it has joined (its -v
	// line); Stale starts the line it prints, the path appended, when a
	// dependency changed (-d); Lost is printed when the holder is gone
	// while the payload runs. "" prints nothing.
	Joined, Stale, Lost string
	// Cwd, Exec, Argv and Env are the payload's start: the working
	// directory and program inside, its arguments and environment.
	Cwd, Exec string
	Argv, Env []string
	Deps      []Dep
}

// Encode makes the body of the answer.
func (r *Reply) Encode() ([]byte, error) {
	if !strings.HasPrefix(r.Cwd, "/") || r.Exec == "" || len(r.Argv) == 0 {
		return nil, errors.New("no payload to start")
	}
	var b bytes.Buffer
	put := func(s string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%q holds a NUL byte", s)
		}
		b.WriteString(s)
		b.WriteByte(0)
		return nil
	}
	list := []string{strconv.Itoa(r.Pid), r.Joined, r.Stale, r.Lost, r.Cwd, r.Exec, strconv.Itoa(len(r.Argv))}
	list = append(list, r.Argv...)
	list = append(list, strconv.Itoa(len(r.Env)))
	list = append(list, r.Env...)
	list = append(list, strconv.Itoa(2*len(r.Deps)))
	for _, d := range r.Deps {
		if !strings.HasPrefix(d.Path, "/") {
			return nil, fmt.Errorf("dependency %s is not an absolute path", d.Path)
		}
		list = append(list, d.Line, d.Path)
	}
	for _, s := range list {
		if err := put(s); err != nil {
			return nil, err
		}
	}
	if b.Len() > MaxReply {
		return nil, fmt.Errorf("the answer would be %d bytes, over %d", b.Len(), MaxReply)
	}
	return b.Bytes(), nil
}

// decode reads a body as the constructor does (for tests of Encode).
func decode(body []byte) (*Reply, error) {
	if len(body) == 0 || body[len(body)-1] != 0 {
		return nil, errors.New("not NUL-terminated")
	}
	f := strings.Split(string(body[:len(body)-1]), "\x00")
	at := 0
	next := func() (string, error) {
		if at >= len(f) {
			return "", errors.New("short body")
		}
		at++
		return f[at-1], nil
	}
	list := func() ([]string, error) {
		c, err := next()
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > len(f)-at {
			return nil, fmt.Errorf("bad count %q", c)
		}
		at += n
		if n == 0 {
			return nil, nil
		}
		return f[at-n : at], nil
	}
	r := &Reply{}
	var head [6]string
	for i := range head {
		s, err := next()
		if err != nil {
			return nil, err
		}
		head[i] = s
	}
	pid, err := strconv.Atoi(head[0])
	if err != nil {
		return nil, err
	}
	r.Pid, r.Joined, r.Stale, r.Lost, r.Cwd, r.Exec = pid, head[1], head[2], head[3], head[4], head[5]
	if r.Argv, err = list(); err != nil {
		return nil, err
	}
	if r.Env, err = list(); err != nil {
		return nil, err
	}
	deps, err := list()
	if err != nil || len(deps)%2 != 0 {
		return nil, fmt.Errorf("bad dependencies: %v", err)
	}
	for i := 0; i < len(deps); i += 2 {
		r.Deps = append(r.Deps, Dep{Line: deps[i], Path: deps[i+1]})
	}
	if at != len(f) {
		return nil, errors.New("trailing strings")
	}
	return r, nil
}

// Offer is a container that a launch using another's image mount hands to
// that mount's holder to serve in its place (it exits, the holder
// lingers): the name and request it would serve under, and the encoded
// Reply. Its namespaces travel with it as descriptors.
type Offer struct {
	Name    string
	Request []byte
	Body    []byte
}

// Encode makes the offer's bytes: three length-prefixed parts.
func (o *Offer) Encode() []byte {
	var b bytes.Buffer
	for _, p := range [][]byte{[]byte(o.Name), o.Request, o.Body} {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(p)))
		b.Write(p)
	}
	return b.Bytes()
}

// DecodeOffer reads Encode's bytes, checking the limits a request and an
// answer have.
func DecodeOffer(b []byte) (*Offer, error) {
	var parts [3][]byte
	for i, limit := range []int{95, MaxRequest, MaxReply} {
		if len(b) < 4 {
			return nil, errors.New("short offer")
		}
		n := int(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if n > limit || n > len(b) {
			return nil, fmt.Errorf("offer part %d of %d bytes", i, n)
		}
		parts[i], b = b[:n], b[n:]
	}
	if len(b) != 0 || len(parts[0]) == 0 {
		return nil, errors.New("malformed offer")
	}
	if _, err := decode(parts[2]); err != nil {
		return nil, fmt.Errorf("offered answer: %w", err)
	}
	return &Offer{Name: string(parts[0]), Request: parts[1], Body: parts[2]}, nil
}

// Name is the abstract socket name (without its leading NUL) of a request
// of uid: the constructor's rule (warm_linux.c), FNV-1a of the request's
// bytes. A holder serves an offered container only under its right name.
func Name(uid int, request []byte) string {
	h := fnv.New64a()
	h.Write(request)
	return fmt.Sprintf("launch/warm/%d/%016x", uid, h.Sum64())
}

// header is a magic and a length.
func header(magic string, n int) []byte {
	h := make([]byte, 8)
	copy(h, magic)
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	return h
}
