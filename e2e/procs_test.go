package e2e

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// proc is one process as /proc showed it at one moment.
type proc struct {
	Pid, PPid int
	State     byte   // the state letter of /proc/PID/stat: R, S, Z …
	Cmdline   string // arguments joined by spaces ("" for a kernel thread or a zombie)
}

// Zombie reports whether the process has exited and waits to be reaped.
func (p proc) Zombie() bool { return p.State == 'Z' }

// readProc reads one process; ok is false when it is gone.
func readProc(pid int) (p proc, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	st, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return proc{}, false
	}
	s := string(st)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return proc{}, false
	}
	p = proc{Pid: pid, State: f[0][0]}
	p.PPid, _ = strconv.Atoi(f[1])
	cl, _ := os.ReadFile(dir + "/cmdline")
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
	return p, true
}

// procTable is a snapshot of every process, by pid.
type procTable map[int]proc

// readProcs takes a snapshot of every process.
func readProcs() procTable {
	pt := procTable{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			pt[pid] = p
		}
	}
	return pt
}

// descendants lists pid's descendants in the snapshot: pid → command line.
func (pt procTable) descendants(pid int) map[int]string {
	out := map[int]string{}
	for p, info := range pt {
		for q := info.PPid; q > 1; q = pt[q].PPid {
			if q == pid {
				out[p] = info.Cmdline
				break
			}
			if _, ok := pt[q]; !ok {
				break
			}
		}
	}
	return out
}

// descendantsOf lists pid's live descendants and their command lines.
func descendantsOf(pid int) map[int]string { return readProcs().descendants(pid) }

// procParent returns pid's parent pid (0 if it is gone).
func procParent(pid int) int {
	p, _ := readProc(pid)
	return p.PPid
}

// procCmdline returns pid's command line, arguments separated by spaces.
func procCmdline(pid int) string {
	p, _ := readProc(pid)
	return p.Cmdline
}

// alive reports whether pid still runs the command line cmd (and is no zombie).
func alive(pid int, cmd string) bool {
	p, ok := readProc(pid)
	return ok && !p.Zombie() && p.Cmdline == strings.TrimSpace(cmd)
}

// environHas reports whether pid's environment holds the entry kv exactly.
func environHas(pid int, kv string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(kv + "\x00")
	return bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...))
}
