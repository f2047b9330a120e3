package instance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/paths"
)

// Version is the format of the records this launch writes.
const Version = 1

// maxRecord bounds the size of a record that is read.
const maxRecord = 1 << 20

// recordSuffix ends the name of every record file.
const recordSuffix = ".json"

// Errors of the lookups, for callers that must tell them apart.
var (
	// ErrNotFound: no record of that name.
	ErrNotFound = errors.New("no such instance")
	// ErrGone: the record's process is gone (the record is stale).
	ErrGone = errors.New("instance is no longer running")
	// ErrInUse: the name is taken by a live instance.
	ErrInUse = errors.New("instance name in use")
)

// maxName is the longest instance name.
const maxName = 64

// CheckName says why name cannot name an instance, or nil: it must be
// Apptainer's characters (letters, digits, '.', '_', '-'), not start with
// a dot or dash, and be at most maxName bytes. (No regexp: its compilation
// at package start would be paid by every launch.)
func CheckName(name string) error {
	ok := name != "" && len(name) <= maxName && name[0] != '.' && name[0] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("invalid instance name %q: use letters, digits, '.', '_' and '-' (at most %d, not starting with '.' or '-')", name, maxName)
	}
	return nil
}

// Namespaces says which namespaces beyond user and mount the instance's
// init has of its own (joins enter them too).
type Namespaces struct {
	PID bool `json:"pid,omitempty"`
	IPC bool `json:"ipc,omitempty"`
	Net bool `json:"net,omitempty"`
	UTS bool `json:"uts,omitempty"`
}

// Record is what is kept about one instance.
type Record struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	UID     int    `json:"uid"`
	Host    string `json:"host"`
	// Pid is the instance's init (the container stage) in the host's PID
	// namespace, and StartTime its start time (/proc/PID/stat, field 22):
	// together they name one process for ever. While an instance starts,
	// they are those of the `instance start` process (Starting).
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Starting  bool   `json:"starting,omitempty"`
	Image     string `json:"image,omitempty"`
	Started   string `json:"started,omitempty"`
	Out       string `json:"stdout,omitempty"`
	Err       string `json:"stderr,omitempty"`
	// Namespaces are those of the init beyond user and mount.
	Namespaces Namespaces `json:"namespaces"`
	// Join is what a launch joining the instance needs (internal/container
	// writes and reads it; opaque here).
	Join json.RawMessage `json:"join,omitempty"`
}

// Store is one user's records on this host, in a directory of theirs
// that nobody else can write.
type Store struct {
	dir  *os.File // the records' directory
	path string
	uid  int
	host string
	// Logs is the directory of the instances' log files.
	Logs string
}

// Open opens (making it if missing) the store of uid on this host:
// $XDG_RUNTIME_DIR/launch/instances/HOST when XDG_RUNTIME_DIR is a
// directory of uid's nobody else can write, else the same under
// /run/user/UID when that exists and is such a directory, else
// ~/.launch/instances/state/HOST; the logs go to
// ~/.launch/instances/logs/HOST (made when a log is opened).
func Open(uid int, home string, getenv func(string) string) (*Store, error) {
	host, err := os.Hostname()
	if err != nil || host == "" || strings.ContainsAny(host, "/\x00") || host == "." || host == ".." {
		return nil, fmt.Errorf("instances: cannot name this host (%q): %v", host, err)
	}
	if !filepath.IsAbs(home) {
		return nil, fmt.Errorf("instances: home directory %q is not an absolute path", home)
	}
	s := &Store{uid: uid, host: host, Logs: paths.UserDir(home, "instances", "logs", host)}
	var why []string
	// A runtime directory is the user's alone; in home, the fallback, a
	// container's payload (home is bound) can write records too (see
	// docs/instances.md, "Where records live").
	runDirs := []string{getenv("XDG_RUNTIME_DIR"), "/run/user/" + strconv.Itoa(uid)}
	for i, rd := range runDirs {
		if !filepath.IsAbs(rd) || i == 1 && rd == runDirs[0] {
			continue
		}
		if i == 1 { // not named by XDG_RUNTIME_DIR: used only when there already
			if fi, err := os.Lstat(rd); err != nil || !fi.IsDir() {
				continue
			}
		}
		d, err := openChain(rd, []string{"launch", "instances", host}, uid, true)
		if err == nil {
			s.dir, s.path = d, filepath.Join(rd, "launch", "instances", host)
			return s, nil
		}
		why = append(why, err.Error())
	}
	d, err := openChain(home, []string{paths.UserDirName, "instances", "state", host}, uid, false)
	if err != nil {
		why = append(why, err.Error())
		return nil, fmt.Errorf("instances: no usable state directory: %s", strings.Join(why, "; "))
	}
	s.dir, s.path = d, paths.UserDir(home, "instances", "state", host)
	return s, nil
}

// openChain opens base, then each of comps below it (made mode 0700 when
// missing), following no symbolic link; every directory of comps must
// belong to uid and be writable by nobody else, and base too when
// checkBase.
func openChain(base string, comps []string, uid int, checkBase bool) (*os.File, error) {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", base, err)
	}
	path := base
	if checkBase {
		if err := checkDir(fd, path, uid); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	for _, c := range comps {
		path = filepath.Join(path, c)
		if err := unix.Mkdirat(fd, c, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return nil, fmt.Errorf("creating %s: %w", path, err)
		}
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		fd = nfd
		if err := checkDir(fd, path, uid); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkDir requires the directory at fd to be uid's and writable by
// nobody else.
func checkDir(fd int, path string, uid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if int(st.Uid) != uid || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s belongs to uid %d, mode %04o: not a directory only uid %d can write", path, st.Uid, st.Mode&0o7777, uid)
	}
	return nil
}

// Close releases the store.
func (s *Store) Close() error { return s.dir.Close() }

// Path is the records' directory.
func (s *Store) Path() string { return s.path }

// Host is this host's name, as the records and logs use it.
func (s *Store) Host() string { return s.host }

// UID is the store's user.
func (s *Store) UID() int { return s.uid }

// Lock holds the store's lock (flock on its directory) until unlock is
// called: starts, stale-record removals and stops take it, so that no
// record is removed that another launch has just written.
func (s *Store) Lock() (unlock func(), err error) {
	fd := int(s.dir.Fd())
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", s.path, err)
	}
	s.sweepTemps()
	return func() { _ = unix.Flock(fd, unix.LOCK_UN) }, nil
}

// sweepTemps removes the temporary files (.NAME.tmp.PID) that a Write
// killed before it renamed left, those of a pid that no longer runs.
// Called under the lock; a failure only leaves a file behind.
func (s *Store) sweepTemps() {
	names, err := s.dirNames()
	if err != nil {
		return
	}
	for _, e := range names {
		pid, ok := tempPid(e)
		if ok && unix.Kill(pid, 0) == unix.ESRCH {
			_ = unix.Unlinkat(int(s.dir.Fd()), e, 0)
		}
	}
}

// tempPid is the writer's pid of a temporary file's name .NAME.tmp.PID.
func tempPid(e string) (int, bool) {
	i := strings.LastIndex(e, ".tmp.")
	if !strings.HasPrefix(e, ".") || i < 1 {
		return 0, false
	}
	pid, err := strconv.Atoi(e[i+len(".tmp."):])
	return pid, err == nil && pid > 0 && CheckName(e[1:i]) == nil
}

// Read reads the record of name, checked: a regular file of the store's
// user, writable by nobody else, at most maxRecord bytes, opened without
// following a link and without blocking; its name and uid must be the
// ones asked for.
func (s *Store) Read(name string) (*Record, error) {
	fd, err := unix.Openat(int(s.dir.Fd()), name+recordSuffix,
		unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, ErrNotFound
	}
	disp := filepath.Join(s.path, name+recordSuffix)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", disp, err)
	}
	f := os.NewFile(uintptr(fd), disp)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", disp, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%s is not a regular file", disp)
	case int(st.Uid) != s.uid:
		return nil, fmt.Errorf("%s belongs to uid %d, not to you (uid %d)", disp, st.Uid, s.uid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%s can be written by others (mode %04o)", disp, st.Mode&0o7777)
	case st.Size > maxRecord:
		return nil, fmt.Errorf("%s is larger than %d bytes", disp, maxRecord)
	}
	buf := make([]byte, st.Size+1)
	n, err := readFull(f, buf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", disp, err)
	}
	if n > int(st.Size) {
		return nil, fmt.Errorf("%s grew while it was read", disp)
	}
	r := &Record{}
	if err := json.Unmarshal(buf[:n], r); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", disp, err)
	}
	switch {
	case r.Version != Version:
		return nil, fmt.Errorf("%s: record version %d, this launch reads %d", disp, r.Version, Version)
	case r.Name != name:
		return nil, fmt.Errorf("%s names instance %q", disp, r.Name)
	case r.UID != s.uid:
		return nil, fmt.Errorf("instance %s belongs to uid %d, not to you (uid %d)", name, r.UID, s.uid)
	case r.Pid <= 0:
		return nil, fmt.Errorf("%s: no process", disp)
	}
	return r, nil
}

// readFull reads until buf is full or end-of-file.
func readFull(f *os.File, buf []byte) (int, error) {
	n, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}

// Write writes r as the record of r.Name, whole: into a temporary file of
// the directory, then renamed over the old one. With exclusive, an
// existing record is never replaced (ErrInUse; linked, not renamed).
func (s *Store) Write(r *Record, exclusive bool) error {
	r.Version, r.UID, r.Host = Version, s.uid, s.host
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the record of instance %s: %w", r.Name, err)
	}
	if len(data) > maxRecord {
		return fmt.Errorf("the record of instance %s would be larger than %d bytes", r.Name, maxRecord)
	}
	dfd := int(s.dir.Fd())
	tmp := "." + r.Name + ".tmp." + strconv.Itoa(os.Getpid())
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Join(s.path, tmp), err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	defer unix.Unlinkat(dfd, tmp, 0) //nolint:errcheck // gone already once renamed
	if werr != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(s.path, tmp), werr)
	}
	final := r.Name + recordSuffix
	if exclusive {
		err = unix.Linkat(dfd, tmp, dfd, final, 0)
		if errors.Is(err, unix.EEXIST) {
			return ErrInUse
		}
	} else {
		err = unix.Renameat(dfd, tmp, dfd, final)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(s.path, final), err)
	}
	return nil
}

// Remove removes the record of name (nothing when there is none).
func (s *Store) Remove(name string) error {
	err := unix.Unlinkat(int(s.dir.Fd()), name+recordSuffix, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", filepath.Join(s.path, name+recordSuffix), err)
	}
	return nil
}

// Names lists the names of the store's records, sorted.
func (s *Store) Names() ([]string, error) {
	ents, err := s.dirNames()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e, recordSuffix); ok && CheckName(n) == nil {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dirNames lists the store's directory.
func (s *Store) dirNames() ([]string, error) {
	fd, err := unix.Openat(int(s.dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.path, err)
	}
	f := os.NewFile(uintptr(fd), s.path)
	defer f.Close()
	ents, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.path, err)
	}
	return ents, nil
}

// Entry is one live instance, as Live finds it.
type Entry struct {
	*Record
	// Proc is its init, open (nil while it starts).
	Proc *Proc
}

// Live returns the live instances of the store, removing stale records
// (their process gone) under the lock. A record that cannot be read is
// reported in bad, not removed.
func (s *Store) Live() (live []Entry, bad []error, err error) {
	unlock, err := s.Lock()
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	names, err := s.Names()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		r, err := s.Read(n)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				bad = append(bad, err)
			}
			continue
		}
		p, err := OpenProc(r.Pid, r.StartTime, s.uid)
		switch {
		case errors.Is(err, ErrGone):
			_ = s.Remove(n)
			continue
		case err != nil:
			bad = append(bad, fmt.Errorf("instance %s: %w", n, err))
			continue
		}
		if r.Starting {
			p.Close()
			p = nil
		}
		live = append(live, Entry{Record: r, Proc: p})
	}
	return live, bad, nil
}

// Lookup returns the live instance name with its init open. A stale
// record is removed and ErrGone returned.
func (s *Store) Lookup(name string) (*Record, *Proc, error) {
	if err := CheckName(name); err != nil {
		return nil, nil, err
	}
	r, err := s.Read(name)
	if err != nil {
		return nil, nil, err
	}
	p, err := OpenProc(r.Pid, r.StartTime, s.uid)
	if errors.Is(err, ErrGone) {
		if unlock, lerr := s.Lock(); lerr == nil {
			if again, rerr := s.Read(name); rerr == nil && again.Pid == r.Pid && again.StartTime == r.StartTime {
				_ = s.Remove(name)
			}
			unlock()
		}
		return nil, nil, ErrGone
	}
	if err != nil {
		return nil, nil, fmt.Errorf("instance %s: %w", name, err)
	}
	if r.Starting {
		p.Close()
		return nil, nil, fmt.Errorf("instance %s is still starting", name)
	}
	return r, p, nil
}

// Now is the time stamp records carry.
func Now() string { return time.Now().UTC().Format(time.RFC3339) }
