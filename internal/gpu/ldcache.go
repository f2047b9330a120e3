package gpu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/launch-hpc/launch/internal/capwriter"
	"github.com/launch-hpc/launch/internal/subproc"
)

// CacheEntry is one line of `ldconfig -p`: a library name and the path the
// cache gives for it (often a symbolic link to the versioned file).
type CacheEntry struct {
	Name, Path string
}

// ParseLdconfig reads the output of `ldconfig -p`, in its order (the
// cache's order of preference), skipping lines that are not entries:
//
//	libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
func ParseLdconfig(out []byte) []CacheEntry {
	var es []CacheEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		left, path, ok := strings.Cut(sc.Text(), " => ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSpace(left), " (")
		path = strings.TrimSpace(path)
		if name == "" || !filepath.IsAbs(path) {
			continue
		}
		es = append(es, CacheEntry{Name: name, Path: path})
	}
	return es
}

// ldconfigTimeout bounds one run of ldconfig.
const ldconfigTimeout = 10 * time.Second

// maxLdconfigOutput bounds what is read of its output.
const maxLdconfigOutput = 16 << 20

// sbinPath is searched after PATH for a program given by name: ldconfig
// lives in /sbin, which a user's PATH often lacks.
const sbinPath = "/usr/local/sbin:/usr/sbin:/sbin"

// ReadCache runs `PROG -p` and parses its output. prog is a path, or a
// name looked up in path and then in the sbin directories.
func ReadCache(prog, path string) ([]CacheEntry, error) {
	bin, err := findProgram(prog, path+":"+sbinPath)
	if err != nil {
		return nil, fmt.Errorf("ldconfig (launch.conf gpu.ldconfig = %q): %w", prog, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ldconfigTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p")
	out, errb := capwriter.Buffer{Max: maxLdconfigOutput}, capwriter.Buffer{Max: 4096}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := subproc.Run(cmd); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			return nil, fmt.Errorf("running %s -p: %w: %s", bin, err, firstLine(msg))
		}
		return nil, fmt.Errorf("running %s -p: %w", bin, err)
	}
	if out.Over {
		return nil, fmt.Errorf("running %s -p: more than %d bytes of output", bin, maxLdconfigOutput)
	}
	return ParseLdconfig(out.Bytes()), nil
}

// findProgram returns prog if it is a path, else its first executable
// match in the colon-separated dirs.
func findProgram(prog, dirs string) (string, error) {
	if strings.Contains(prog, "/") {
		if err := executable(prog); err != nil {
			return "", err
		}
		return prog, nil
	}
	for _, d := range filepath.SplitList(dirs) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, prog)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %s", prog, sbinPath)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

var errNotExecutable = errors.New("not an executable file")
