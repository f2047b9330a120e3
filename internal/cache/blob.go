package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Open implements oci.BlobStore: it returns the cached blob d, first
// fetching it (under the blob's lock) when the cache has no valid copy.
// A blob is checked against its digest each time.
func (c *Cache) Open(ctx context.Context, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	unlock, err := c.Lock(ctx, KindBlob, d)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, _, err := openEntry(c.blobs, d.Hex, unix.O_RDONLY, c.uid)
	if err == nil {
		var ok bool
		if ok, err = matches(f, d, size); ok {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				touch(c.blobs, d.Hex)
				return f, nil
			}
		}
		f.Close()
	}
	if !errors.Is(err, unix.ENOENT) {
		c.warn("cached blob %s is corrupt (%v); fetching it again", d, err)
		if err := removeEntry(c.blobs, d.Hex); err != nil {
			return nil, fmt.Errorf("removing corrupt cache entry: %w", err)
		}
	}
	if err := c.store(ctx, d, size, fetch); err != nil {
		return nil, err
	}
	f, _, err = openEntry(c.blobs, d.Hex, unix.O_RDONLY, c.uid)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// BlobPath is where the blob d is kept.
func (c *Cache) BlobPath(d v1.Hash) string { return filepath.Join(c.blobs.Name(), d.Hex) }

// matches reports whether the file's content has digest d and size size
// (size < 0: any).
func matches(f *os.File, d v1.Hash, size int64) (bool, error) {
	got, n, err := sha256Of(f)
	if err != nil {
		return false, err
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("size %d, want %d", n, size)
	}
	if got != d.Hex {
		return false, fmt.Errorf("digest sha256:%s", got)
	}
	return true, nil
}

// sha256Of reads f from its current offset to its end and returns the
// hex SHA-256 of what it read, and how many bytes.
func sha256Of(f *os.File) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// store fetches blob d into the cache, verified, atomically.
func (c *Cache) store(ctx context.Context, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) error {
	rc, err := fetch()
	if err != nil {
		return err
	}
	defer rc.Close()
	tf, err := newTemp(c.blobs)
	if err != nil {
		return err
	}
	defer tf.discard()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tf.f, h), &ctxReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("fetching blob %s: %w", d, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("blob %s: got %d bytes, the manifest says %d (truncated or wrong data)", d, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
		return fmt.Errorf("blob %s: digest mismatch: got sha256:%s (corrupt or tampered data)", d, got)
	}
	return tf.link(d.Hex, false)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// temp is a file being written in a cache directory: unnamed (O_TMPFILE)
// where the file system allows, else under a hidden name removed by
// discard.
type temp struct {
	dir   *os.File
	f     *os.File
	named string
}

func newTemp(dir *os.File) (*temp, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return &temp{dir: dir, f: os.NewFile(uintptr(fd), dir.Name()+"/(unnamed)")}, nil
	}
	for try := 0; ; try++ {
		var b [8]byte
		_, _ = rand.Read(b[:])
		name := ".tmp-" + hex.EncodeToString(b[:])
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return &temp{dir: dir, f: os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), named: name}, nil
		}
		if !errors.Is(err, unix.EEXIST) || try == 10 {
			return nil, fmt.Errorf("creating a temporary file in %s: %w", dir.Name(), err)
		}
	}
}

func (t *temp) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.named != "" {
		_ = unix.Unlinkat(int(t.dir.Fd()), t.named, 0)
		t.named = ""
	}
}

// link gives the complete file its name in its directory: a new name
// (under the entry's lock none is there), or with replace the name of a
// file it replaces.
func (t *temp) link(name string, replace bool) error {
	p := filepath.Join(t.dir.Name(), name)
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	dirfd := int(t.dir.Fd())
	var err error
	switch {
	case t.named != "":
		if err = unix.Renameat(dirfd, t.named, dirfd, name); err == nil {
			t.named = ""
		}
	case replace:
		// An unnamed file cannot replace a name: link it under a
		// temporary one, then rename that.
		var b [8]byte
		_, _ = rand.Read(b[:])
		tmp := ".tmp-" + hex.EncodeToString(b[:])
		if err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(t.f.Fd())), dirfd, tmp, unix.AT_SYMLINK_FOLLOW); err == nil {
			t.named = tmp
			if err = unix.Renameat(dirfd, tmp, dirfd, name); err == nil {
				t.named = ""
			}
		}
	default:
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(t.f.Fd())), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	t.discard()
	return nil
}
