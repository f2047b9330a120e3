package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// verdictDir is where image-signature verdicts are kept, below the cache
// directory: one small file per image identity and policy, named by the
// hex SHA-256 that internal/imagetrust makes of them.
const verdictDir = "verified"

// maxVerdict bounds the read of one verdict.
const maxVerdict = 4096

// Verdicts is the directory of the cache that keeps the results of
// signature checks of images, under the same rules as the rest of the
// cache (the directory and every entry the user's and writable by nobody
// else, reached by descriptor without following links). It opens only
// that directory, not the blob and SIF directories.
type Verdicts struct {
	dir *os.File
	uid int
}

// OpenVerdicts opens (creating it) the verdict directory of the cache
// directory dir.
//
// A launch checks images in the user namespace its constructor made
// (docs/process-model.md), where only the user's own uid is mapped: root's
// directories above the cache (/, /home) show as owned by the overflow
// uid, like those of every other user. There, and only for the
// directories and links above the cache, the overflow uid stands for root
// (rootInNamespace): the cache directory, every directory in it and every
// verdict must still be the user's own and writable by nobody else, which
// another user cannot fake from above (a directory or link they swap in
// leads only to directories the user owns, whose files they cannot write).
func OpenVerdicts(dir string) (*Verdicts, error) {
	uid := os.Geteuid()
	d, err := openTrustedRoot(dir, uid, rootInNamespace())
	if err != nil {
		return nil, err
	}
	defer d.Close()
	sub, err := openSub(d, verdictDir, uid)
	if err != nil {
		return nil, err
	}
	return &Verdicts{dir: sub, uid: uid}, nil
}

// Close closes the directory.
func (v *Verdicts) Close() error { return v.dir.Close() }

// Read returns the verdict name (a 64-digit hex name), or nil when there
// is none. An entry that breaks the cache's rules is an error naming it.
func (v *Verdicts) Read(name string) ([]byte, error) {
	if !isHexDigest(name) {
		return nil, fmt.Errorf("verdict name %q is not a digest", name)
	}
	f, _, err := openEntry(v.dir, name, unix.O_RDONLY, v.uid)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxVerdict+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	if len(b) > maxVerdict {
		return nil, fmt.Errorf("cache entry %s is larger than a verdict: remove it", f.Name())
	}
	return b, nil
}

// Write records the verdict name, replacing any, atomically.
func (v *Verdicts) Write(name string, b []byte) error {
	if !isHexDigest(name) || len(b) > maxVerdict {
		return fmt.Errorf("verdict %q: bad name or too long", name)
	}
	tf, err := newTemp(v.dir)
	if err != nil {
		return err
	}
	defer tf.discard()
	if _, err := tf.f.Write(b); err != nil {
		return fmt.Errorf("writing verdict %s: %w", name, err)
	}
	return tf.link(name, true)
}

// Lock takes the exclusive lock of the verdict name (a file name.lock
// beside it, which stays), so that the launches of one image that all
// miss at once check it once; unlock releases it.
func (v *Verdicts) Lock(name string) (unlock func(), err error) {
	if !isHexDigest(name) {
		return nil, fmt.Errorf("verdict name %q is not a digest", name)
	}
	f, _, err := openEntry(v.dir, name+".lock", unix.O_RDWR|unix.O_CREAT, v.uid)
	if err != nil {
		return nil, fmt.Errorf("locking: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
}

// rootInNamespace is the uid root's files show as: 0, or the overflow uid
// when this process is in a user namespace that does not map uid 0.
func rootInNamespace() int {
	m, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(m), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		outside, err2 := strconv.ParseUint(f[1], 10, 32)
		n, err3 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && err3 == nil && outside == 0 && inside+n > inside {
			return int(inside) // host root is mapped: to this uid
		}
	}
	over, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return 65534
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(over)))
	if err != nil {
		return 65534
	}
	return v
}
