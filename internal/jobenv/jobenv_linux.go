package jobenv

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Stat is what launch reads of /proc/PID/stat.
type Stat struct {
	Comm  string // the command name (field 2)
	PPid  int    // the parent's pid (field 4)
	Start uint64 // the start time in clock ticks since boot (field 22)
}

// ParseStat parses a /proc/PID/stat line: "pid (comm) state ppid …",
// where comm may hold spaces and parentheses.
func ParseStat(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, errors.New("no (comm)")
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 { // field 3 (state) is f[0]; field 22 is f[19]
		return Stat{}, fmt.Errorf("%d fields after the command name, want 20 or more", len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("parent pid: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("start time: %w", err)
	}
	return Stat{Comm: string(b[open+1 : end]), PPid: ppid, Start: start}, nil
}

// ReadStat reads pid's /proc/PID/stat relative to proc, a descriptor of
// a /proc directory (the host's, opened before a pivot), bounded, without
// following a link.
func ReadStat(proc, pid int) (Stat, error) {
	name := strconv.Itoa(pid) + "/stat"
	fd, err := unix.Openat(proc, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return Stat{}, fmt.Errorf("opening /proc/%s: %w", name, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1024) // the line is well under: comm is at most 64 bytes
	n, err := unix.Read(fd, buf)
	if err != nil {
		return Stat{}, fmt.Errorf("reading /proc/%s: %w", name, err)
	}
	st, err := ParseStat(buf[:n])
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%s: %w", name, err)
	}
	return st, nil
}

// maxGenerations bounds the walk up the process tree.
const maxGenerations = 64

// StepAncestor walks up from pid (pid itself first) through proc and
// returns the first process named slurmstepd, the Slurm job step's, with
// its start time; ok is false when there is none.
func StepAncestor(proc, pid int) (step int, start uint64, ok bool) {
	return AncestorNamed(proc, pid, "slurmstepd")
}

// AncestorNamed walks up from pid (pid itself first, at most
// maxGenerations) through proc and returns the first process whose
// command name is comm, with its start time; ok is false when there is
// none.
func AncestorNamed(proc, pid int, comm string) (found int, start uint64, ok bool) {
	for i := 0; i < maxGenerations && pid > 1; i++ {
		st, err := ReadStat(proc, pid)
		if err != nil {
			return 0, 0, false
		}
		if st.Comm == comm {
			return pid, st.Start, true
		}
		pid = st.PPid
	}
	return 0, 0, false
}
