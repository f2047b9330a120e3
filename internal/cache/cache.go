// Package cache is the per-user cache of what `launch pull` and `launch
// build` fetch from registries: blobs (layers, by digest) and the SIF files
// converted from them (by image manifest digest).
//
// It is safe for many processes at once, as batch jobs start them: each
// entry is produced under an exclusive flock on its own lock file, written
// to an unnamed temporary file (O_TMPFILE) and linked into place only when
// complete and verified, so a reader never sees a partial entry and a
// killed writer leaves nothing. A blob is checked against its digest each
// time it is used; a corrupt one is removed and fetched again.
//
// Layout under the cache directory ($LAUNCH_CACHEDIR, else
// ~/.launch/cache, mode 0700):
//
//	blobs/sha256/HEX       registry blobs
//	sif/sha256/HEX.sif     converted images, by manifest digest
//	locks/                 lock files (never removed while in use)
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// EnvDir is the environment variable that moves the cache.
const EnvDir = "LAUNCH_CACHEDIR"

// Kinds of entries.
const (
	KindBlob = "blob"
	KindSIF  = "sif"
)

// Cache is an opened cache directory.
type Cache struct {
	root string
	// Waiting, when set, is called once when an entry is locked by
	// another process and this one waits for it.
	Waiting func(what string)
	// Warn, when set, receives warnings (a corrupt entry that is replaced).
	Warn func(format string, a ...any)
}

// DefaultDir is $LAUNCH_CACHEDIR, else ~/.launch/cache.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory: %w (set %s)", err, EnvDir)
	}
	return filepath.Join(home, ".launch", "cache"), nil
}

// Open opens (creating it, mode 0700) the cache directory dir.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating cache directory %s: %w (set %s to move it)", dir, err, EnvDir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cache directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 && ownedByMe(fi) {
		_ = os.Chmod(dir, 0o700) // the cache is private
	}
	for _, d := range []string{"blobs/sha256", "sif/sha256", "locks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating cache directory %s: %w", filepath.Join(dir, d), err)
		}
	}
	return &Cache{root: dir}, nil
}

func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*unix.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.root }

// isHexDigest reports whether s is 64 lower-case hex digits.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkDigest(d v1.Hash) error {
	if d.Algorithm != "sha256" || !isHexDigest(d.Hex) {
		return fmt.Errorf("unsupported digest %q (only sha256 is cached)", d)
	}
	return nil
}

// BlobPath is where the blob d is kept.
func (c *Cache) BlobPath(d v1.Hash) string { return filepath.Join(c.root, "blobs", "sha256", d.Hex) }

// SIFPath is where the SIF converted from the image with manifest digest d
// is kept.
func (c *Cache) SIFPath(d v1.Hash) string {
	return filepath.Join(c.root, "sif", "sha256", d.Hex+".sif")
}

// Lock takes the exclusive lock of entry (kind, d), waiting for another
// process that holds it; unlock releases it.
func (c *Cache) Lock(ctx context.Context, kind string, d v1.Hash) (unlock func(), err error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	p := filepath.Join(c.root, "locks", kind+"-"+d.Hex+".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking cache entry %s: %w", p, err)
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking cache entry %s: %w", p, err)
		}
		if !told && c.Waiting != nil {
			c.Waiting(kind + " " + d.String())
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return func() { f.Close() }, nil // closing drops the flock
}

// Open implements oci.BlobStore: it returns the cached blob d, first
// fetching it (under the blob's lock) when the cache has no valid copy.
func (c *Cache) Open(ctx context.Context, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	unlock, err := c.Lock(ctx, KindBlob, d)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := c.BlobPath(d)
	if f, err := os.Open(p); err == nil {
		ok, verr := matches(f, d, size)
		if ok {
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				now := time.Now()
				_ = os.Chtimes(p, now, now) // last use, for listing
				return f, nil
			}
		}
		f.Close()
		if c.Warn != nil {
			c.Warn("cached blob %s is corrupt (%v); fetching it again", d, verr)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing corrupt cache entry %s: %w", p, err)
		}
	}
	if err := c.store(ctx, p, d, size, fetch); err != nil {
		return nil, err
	}
	return os.Open(p)
}

// matches reports whether the file's content has digest d and size size
// (size < 0: any).
func matches(f *os.File, d v1.Hash, size int64) (bool, error) {
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, err
	}
	if size >= 0 && n != size {
		return false, fmt.Errorf("size %d, want %d", n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Hex {
		return false, fmt.Errorf("digest sha256:%s", got)
	}
	return true, nil
}

// store fetches blob d into the cache at p, verified, atomically.
func (c *Cache) store(ctx context.Context, p string, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) error {
	rc, err := fetch()
	if err != nil {
		return err
	}
	defer rc.Close()
	tf, err := newTemp(filepath.Dir(p))
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
	return tf.link(p)
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

// temp is a file being written: unnamed (O_TMPFILE) where the file system
// allows, else under a hidden name removed by discard.
type temp struct {
	f     *os.File
	named string
}

func newTemp(dir string) (*temp, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return &temp{f: os.NewFile(uintptr(fd), dir+"/(unnamed)")}, nil
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file in %s: %w", dir, err)
	}
	return &temp{f: f, named: f.Name()}, nil
}

func (t *temp) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.named != "" {
		os.Remove(t.named)
		t.named = ""
	}
}

// link gives the complete file its name p (replacing nothing: under the
// entry's lock, p does not exist).
func (t *temp) link(p string) error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	var err error
	if t.named == "" {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(t.f.Fd())), unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
	} else {
		err = os.Rename(t.named, p)
		if err == nil {
			t.named = ""
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	t.discard()
	return nil
}

// Entry is one cached item.
type Entry struct {
	Kind   string
	Digest string
	Size   int64
	Used   time.Time
	Path   string
}

// List returns the cached entries, blobs then SIFs, most recently used
// first within each.
func (c *Cache) List() ([]Entry, error) {
	var out []Entry
	for _, k := range []struct{ kind, dir, suffix string }{
		{KindBlob, "blobs/sha256", ""}, {KindSIF, "sif/sha256", ".sif"},
	} {
		ents, err := os.ReadDir(filepath.Join(c.root, k.dir))
		if err != nil {
			return nil, fmt.Errorf("listing cache %s: %w", c.root, err)
		}
		var part []Entry
		for _, e := range ents {
			n := e.Name()
			hexd, ok := strings.CutSuffix(n, k.suffix)
			if !ok || !isHexDigest(hexd) {
				continue // temporary or foreign file
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			part = append(part, Entry{Kind: k.kind, Digest: "sha256:" + hexd, Size: fi.Size(), Used: fi.ModTime(),
				Path: filepath.Join(c.root, k.dir, n)})
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Used.After(part[j].Used) })
		out = append(out, part...)
	}
	return out, nil
}

// Clean removes the entries of the given kinds (all when none given) and
// returns how many entries and bytes went. Processes using an entry at that
// moment keep reading their open copy.
func (c *Cache) Clean(kinds ...string) (int, int64, error) {
	ents, err := c.List()
	if err != nil {
		return 0, 0, err
	}
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	n, size := 0, int64(0)
	for _, e := range ents {
		if len(want) > 0 && !want[e.Kind] {
			continue
		}
		if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, size, fmt.Errorf("removing %s: %w", e.Path, err)
		}
		n++
		size += e.Size
	}
	return n, size, nil
}
