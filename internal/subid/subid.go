// Package subid reads the subordinate id ranges of /etc/subuid and
// /etc/subgid and turns them into the uid and gid maps of --fakeroot: 0
// inside is the calling user, 1…N the start of the user's range (the
// layout Apptainer gives its fakeroot containers).
//
// It is pure: the caller reads the files and finds the helpers
// (newuidmap, newgidmap); it must not make system calls.
package subid

import (
	"bytes"
	"strconv"
)

// Count is how many subordinate ids a fakeroot container maps at most
// (1…Count inside), as Apptainer does: 65536.
const Count = 65536

// Range is one subordinate id range: Count ids from Start.
type Range struct {
	Start, Count int
}

// Find returns the first range of /etc/subuid (or /etc/subgid) content
// data that belongs to the user, named by name or by the numeric id, as
// shadow's newuidmap accepts either. ok is false when the user has none
// (or only empty ones). Malformed lines are skipped, as shadow skips them.
func Find(data []byte, name string, id int) (r Range, ok bool) {
	idStr := strconv.Itoa(id)
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		f := bytes.Split(bytes.TrimSpace(line), []byte{':'})
		if len(f) != 3 || len(f[0]) == 0 || f[0][0] == '#' {
			continue
		}
		if who := string(f[0]); who != idStr && (name == "" || who != name) {
			continue
		}
		start, err1 := strconv.Atoi(string(f[1]))
		n, err2 := strconv.Atoi(string(f[2]))
		if err1 != nil || err2 != nil || start < 0 || n <= 0 {
			continue
		}
		return Range{Start: start, Count: n}, true
	}
	return Range{}, false
}

// Mapping is one line of a uid or gid map: Size ids from Inside map onto
// as many from Outside.
type Mapping struct {
	Inside, Outside, Size int
}

// Map is the fakeroot map for the id own (the user's uid or gid) with
// range r (ok false: none): 0 → own, then 1…min(r.Count, Count) → the start
// of the range. Without a range it is 0 → own alone.
func Map(own int, r Range, ok bool) []Mapping {
	m := []Mapping{{Inside: 0, Outside: own, Size: 1}}
	if ok {
		m = append(m, Mapping{Inside: 1, Outside: r.Start, Size: min(r.Count, Count)})
	}
	return m
}

// HelperArgs are the arguments after the helper's name for newuidmap or
// newgidmap of pid: `PID 0 OWN 1 1 START COUNT`.
func HelperArgs(pid int, m []Mapping) []string {
	args := []string{strconv.Itoa(pid)}
	for _, e := range m {
		args = append(args, strconv.Itoa(e.Inside), strconv.Itoa(e.Outside), strconv.Itoa(e.Size))
	}
	return args
}
