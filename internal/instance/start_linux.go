package instance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/paths"
)

// StartTimeout is how long Start waits for an instance to be up.
const StartTimeout = 120 * time.Second

// ackTimeout is how long an instance's init waits for Start to record it.
const ackTimeout = 30 * time.Second

// AckTimeout is what SendReady's callers pass.
const AckTimeout = ackTimeout

// Start starts the instance name: it reserves the name (a record naming
// this process, written exclusively, so two starts of one name cannot both
// win), runs argv (a launch command line whose stage, once up, calls
// SendReady on ReadyFD) in a session of its own with its output in the
// log files, waits for it to be ready, and records it. On any failure the
// reservation is removed and the launch, if still there, killed (its stage
// then takes the container down), so nothing is left.
func (s *Store) Start(name, image string, argv, env []string, home string) (*Record, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := s.reserve(name); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.unreserve(name)
		}
	}()
	out, errf, err := s.openLogs(home, name)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	defer errf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the readiness socket: %w", err)
	}
	conn := os.NewFile(uintptr(pair[0]), "instance-ready")
	defer conn.Close()
	child := os.NewFile(uintptr(pair[1]), "instance-ready-child")
	pid, err := syscall.ForkExec("/proc/self/exe", argv, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{null.Fd(), out.Fd(), errf.Fd(), child.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	child.Close()
	if err != nil {
		return nil, fmt.Errorf("starting instance %s: %w", name, err)
	}
	ready, proc, st, err := receiveReady(conn, StartTimeout)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		code := waitChild(pid, 5*time.Second)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("instance %s did not start (exit status %d): %s", name, code, lastError(errf.Name()))
		}
		return nil, fmt.Errorf("instance %s did not start: %w", name, err)
	}
	defer proc.Close()
	rec := &Record{Name: name, Pid: proc.Pid, StartTime: st, Image: image, Started: Now(),
		Out: out.Name(), Err: errf.Name(), Namespaces: ready.Namespaces, Join: ready.Join}
	unlock, err := s.Lock()
	if err == nil {
		err = s.Write(rec, false)
		unlock()
	}
	if err != nil {
		_ = proc.Signal(unix.SIGKILL)
		return nil, err
	}
	if _, err := unix.Write(int(conn.Fd()), []byte{ackByte}); err != nil {
		return nil, fmt.Errorf("instance %s: telling it it is recorded: %w", name, err)
	}
	ok = true
	return rec, nil
}

// reserve writes the record of name that says it is starting (this
// process), unless a live instance has the name; a stale record is
// removed first.
func (s *Store) reserve(name string) error {
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if r, err := s.Read(name); err == nil {
		p, err := OpenProc(r.Pid, r.StartTime, s.uid)
		switch {
		case err == nil:
			p.Close()
			return fmt.Errorf("instance name %s is in use (pid %d; see launch instance list)", name, r.Pid)
		case !errors.Is(err, ErrGone):
			return fmt.Errorf("instance name %s: %w", name, err)
		}
		if err := s.Remove(name); err != nil {
			return err
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	pid, st, err := Self()
	if err != nil {
		return fmt.Errorf("reading this process's start time: %w", err)
	}
	err = s.Write(&Record{Name: name, Pid: pid, StartTime: st, Starting: true, Started: Now()}, true)
	if errors.Is(err, ErrInUse) {
		return fmt.Errorf("instance name %s is in use", name)
	}
	return err
}

// unreserve removes the record of name if it is still this process's.
func (s *Store) unreserve(name string) {
	unlock, err := s.Lock()
	if err != nil {
		return
	}
	defer unlock()
	if r, err := s.Read(name); err == nil && r.Starting && r.Pid == os.Getpid() {
		_ = s.Remove(name)
	}
}

// openLogs opens (truncated) the log files of name under Logs.
func (s *Store) openLogs(home, name string) (out, errf *os.File, err error) {
	dir, err := openChain(home, []string{paths.UserDirName, "instances", "logs", s.host}, s.uid, false)
	if err != nil {
		return nil, nil, fmt.Errorf("instance logs: %w", err)
	}
	defer dir.Close()
	open := func(ext string) (*os.File, error) {
		fd, err := unix.Openat(int(dir.Fd()), name+ext,
			unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
		p := filepath.Join(s.Logs, name+ext)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return nil, fmt.Errorf("%s is not a regular file", p)
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	if out, err = open(".out"); err != nil {
		return nil, nil, err
	}
	if errf, err = open(".err"); err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, errf, nil
}

// waitChild reaps the child pid, waiting at most d; its exit status
// (128+N for signal N), or -1.
func waitChild(pid int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
		if err != nil && err != syscall.EINTR {
			return -1
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}

// lastError is the last FATAL line of the log at path (its message), else
// its last line, for the error of a start that failed.
func lastError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "see " + path
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	data, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last := ""
	for _, l := range lines {
		if m, ok := strings.CutPrefix(l, "FATAL:"); ok {
			last = strings.TrimSpace(m)
		}
	}
	if last == "" && len(lines) > 0 {
		last = strings.TrimSpace(lines[len(lines)-1])
	}
	if last == "" {
		return "no message; see " + path
	}
	return last + " (log: " + path + ")"
}
