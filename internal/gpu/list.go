// Package gpu finds what a container needs from the host to use its GPUs
// (--nv, --rocm): the driver's libraries, named by a list file
// (etc/launch/nvliblist.conf, rocmliblist.conf) and looked up in the host's
// ld.so cache (`ldconfig -p`), the driver's programs on the host PATH, other
// files by absolute path, and the device nodes. It also runs the CDI helper
// (cmd/launch-cdi) for --device, and nvidia-container-cli for --nvccli.
//
// It selects as Apptainer does: a library of the list matches every name of
// the cache that begins with it, only builds for this machine's 64-bit ABI
// are taken, symbolic links are followed to the file that is bound, and of
// several files the cache offers under one name the newest version wins.
//
// It reads the host only; it must not mount, and it does nothing unless a
// GPU option asked for it (the normal start of a container never calls it).
package gpu

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxListSize bounds what is read of a list file.
const maxListSize = 1 << 20

// List is a parsed library list (nvliblist.conf, rocmliblist.conf).
type List struct {
	// Binaries are program names, looked up on the host PATH.
	Binaries []string
	// Libraries are library names (they contain ".so"), matched against
	// the ld.so cache by prefix ("libcuda.so" matches "libcuda.so.1").
	Libraries []string
	// Files are other host files by absolute path, bound at the same path.
	Files []string
}

// ParseList reads a list: one entry a line, "#" starts a comment, blank
// lines are skipped. An entry containing ".so" is a library, an absolute
// path a file, anything else a program name. name is the file's name, for
// messages; an entry with a "/" that is not absolute, or with blanks
// inside, is an error naming its line.
func ParseList(r io.Reader, name string) (List, error) {
	var l List
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		e := strings.TrimSpace(line)
		switch {
		case e == "":
		case strings.ContainsAny(e, " \t"):
			return List{}, fmt.Errorf("%s:%d: %q is not one name (one entry a line)", name, n, e)
		case filepath.IsAbs(e):
			l.Files = append(l.Files, filepath.Clean(e))
		case strings.Contains(e, "/"):
			return List{}, fmt.Errorf("%s:%d: %q: a file must be an absolute path, a library or program a bare name", name, n, e)
		case strings.Contains(e, ".so"):
			l.Libraries = append(l.Libraries, e)
		default:
			l.Binaries = append(l.Binaries, e)
		}
	}
	if err := sc.Err(); err != nil {
		return List{}, fmt.Errorf("reading %s: %w", name, err)
	}
	return l, nil
}

// ReadList reads and parses the list file at path: a regular file (a
// symbolic link to one is followed: the file is the admin's), at most
// maxListSize bytes.
func ReadList(path string) (List, error) {
	data, err := readBounded(path, maxListSize)
	if err != nil {
		return List{}, fmt.Errorf("reading library list %s: %w", path, err)
	}
	return ParseList(bytes.NewReader(data), path)
}

// readBounded reads the regular file at path, refusing one over max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, unwrap(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

// unwrap drops the path from an *os.PathError, for messages that name
// the file already.
func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
