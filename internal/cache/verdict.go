package cache

import (
	"errors"
	"fmt"
	"io"
	"os"

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
func OpenVerdicts(dir string) (*Verdicts, error) {
	uid := os.Geteuid()
	d, err := openTrusted(dir, uid)
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
