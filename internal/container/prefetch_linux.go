package container

import (
	"math"
	"path"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/environ"
)

// prefetchMax is how much of one file prefetch reads: a bound on the work
// for very large executables, of which a start-up touches only part.
const prefetchMax = 8 << 20

// libsMax bounds the shared libraries read ahead for one payload, in
// number and in bytes; a library larger than prefetchMax is left to the
// page faults (a start touches a small part of a large library).
const (
	libsMax      = 16
	libsBytesMax = 24 << 20
)

// prefetchProgram reads the payload's executable ahead (readAhead) and,
// when it is dynamically linked, its ELF interpreter and the shared
// libraries it needs, directly and through each other (breadth first, within libsMax
// and libsBytesMax), as the dynamic loader will find them: the image's
// LD_LIBRARY_PATH of env, DT_RPATH/DT_RUNPATH ($ORIGIN expanded), then the
// usual directories. Only files on the image's FUSE mount (device dev) are
// read ahead, and only regular files are read at all (a named pipe of the
// image is never waited on). Measured on a Debian image
// (docs/performance.md): `launch exec IMAGE /bin/true` 63.3 → 59.0 ms,
// `ls /` 85.8 → 71.2 ms. Errors are ignored: it is only a hint.
func prefetchProgram(exe string, env []string, dev uint64) {
	buf := make([]byte, 128<<10) // one buffer for every file: fresh pages cost a fault each
	fd, st, err := openRegular(exe)
	if err != nil {
		return
	}
	readAhead(fd, st, dev, buf)
	first := elfDeps(fdReaderAt(fd), exe) // also when exe is not on the image
	unix.Close(fd)
	libPath := environ.Get(env, "LD_LIBRARY_PATH")
	seen := map[string]bool{exe: true}
	queue := []elfInfo{first}
	budget, count := libsBytesMax, 0
	for len(queue) > 0 && count < libsMax {
		deps := queue[0]
		queue = queue[1:]
		if interp := deps.interp; interp != "" && !seen[interp] {
			seen[interp] = true
			if n, _ := prefetch(interp, dev, buf, math.MaxInt, false); n > 0 {
				budget -= n
				count++
			}
		}
		dirs := append(splitPath(libPath), deps.search...)
		dirs = append(dirs, libDirs()...)
		for _, name := range deps.needed {
			lib := findLib(name, dirs)
			if lib == "" || seen[lib] || count >= libsMax {
				continue
			}
			seen[lib] = true
			if n, libDeps := prefetch(lib, dev, buf, min(prefetchMax, budget), true); n > 0 {
				budget -= n
				count++
				queue = append(queue, libDeps)
			}
		}
	}
}

// findLib returns where the dynamic loader would find the library name
// (a path is taken as it is), or "".
func findLib(name string, dirs []string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, d := range dirs {
		p := path.Join(d, name)
		if unix.Access(p, unix.R_OK) == nil {
			return p
		}
	}
	return ""
}

// libDirs are the dynamic loader's usual directories: Debian's multiarch
// ones for this architecture, then the others.
func libDirs() []string {
	triplet := map[string]string{
		"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu",
		"ppc64le": "powerpc64le-linux-gnu", "riscv64": "riscv64-linux-gnu",
	}[runtime.GOARCH]
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
}

// splitPath splits a colon-separated list of directories, dropping empty
// and relative entries.
func splitPath(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ":") {
		if strings.HasPrefix(d, "/") {
			out = append(out, d)
		}
	}
	return out
}

// prefetch opens file without blocking (openRegular: only a regular file
// is read at all) and, when it comes from the image's FUSE mount (device
// dev) and is at most max bytes long, reads it ahead (readAhead) and
// returns how many bytes it read and, with deps, what elfDeps finds in it.
func prefetch(file string, dev uint64, buf []byte, max int, deps bool) (int, elfInfo) {
	fd, st, err := openRegular(file)
	if err != nil {
		return 0, elfInfo{}
	}
	defer unix.Close(fd)
	if st.Size > int64(max) {
		return 0, elfInfo{}
	}
	n := readAhead(fd, st, dev, buf)
	if n == 0 || !deps {
		return n, elfInfo{}
	}
	return n, elfDeps(fdReaderAt(fd), file)
}

// readAhead reads the open file fd (of status st) once, in order, through
// buf, up to prefetchMax bytes, when it comes from the image's FUSE mount
// (device dev), and returns how many bytes it read. From a mount made a
// moment ago every page is cold: left to page faults, the kernel asks
// squashfuse for read-around windows centred on each fault, which straddle
// SquashFS blocks, and squashfuse (which caches one data block) decompresses
// most blocks two or three times (31 block decompressions for busybox
// /bin/true against 15 when read in order). posix_fadvise(WILLNEED) would
// not do: the kernel caps it at one readahead window.
func readAhead(fd int, st *unix.Stat_t, dev uint64, buf []byte) int {
	if st.Dev != dev {
		return 0
	}
	total := 0
	for off := int64(0); off < prefetchMax && off < st.Size; {
		n, err := unix.Pread(fd, buf, off)
		if n <= 0 || err != nil {
			break
		}
		off += int64(n)
		total += n
	}
	return total
}
