// Package cache is the per-user cache of what `launch pull` and `launch
// build` fetch from registries: blobs (layers, by digest) and the SIF files
// converted from them (by image manifest digest).
//
// It is safe for many processes at once, as batch jobs start them: each
// entry is produced under an exclusive flock on its own lock file, written
// to an unnamed temporary file (O_TMPFILE) and linked into place only when
// complete and verified, so a reader never sees a partial entry and a
// killed writer leaves nothing. A blob is checked against its digest each
// time it is used; a corrupt one is removed and fetched again. A SIF is
// checked against the SHA-256 recorded when it was made (sif.go); one that
// differs, or has no record, is converted again.
//
// Only entries nobody else can have written are used: the cache directory
// must be the user's and writable by nobody else, and so must every
// directory in it; every directory above it must be the user's or root's
// and writable by nobody else unless sticky; each entry must be a regular
// file of the user's. Anything else is refused with an error naming it
// (dir_linux.go). Entries are opened relative to the directories' open
// descriptors, without following links.
//
// Layout under the cache directory ($LAUNCH_CACHEDIR, else
// ~/.launch/cache, mode 0700):
//
//	blobs/sha256/HEX          registry blobs
//	sif/sha256/HEX.sif        converted images, by manifest digest
//	sif/sha256/HEX.sif.digest the SIF's SHA-256, as recorded when it was made
//	locks/                    lock files (never removed while in use)
//
// It must not fetch from registries or convert images itself: internal/oci and
// internal/ocibuild do, and hand it what they produced.
package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/paths"
)

// EnvDir is the environment variable that moves the cache.
const EnvDir = "LAUNCH_CACHEDIR"

// Kinds of entries.
const (
	KindBlob = "blob"
	KindSIF  = "sif"
)

// Cache is an opened cache directory. Its directories are held open and
// every entry is reached relative to them, never by path.
type Cache struct {
	root  string
	uid   int
	dir   *os.File // the cache directory
	blobs *os.File // blobs/sha256
	sifs  *os.File // sif/sha256
	locks *os.File // locks
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
	return paths.UserDir(home, "cache"), nil
}

// Open opens (creating it, mode 0700) the cache directory dir. It refuses
// a directory that another user could have put entries in (see
// openTrusted): one that is not the caller's, or is writable by others, or
// lies below a directory another user owns or can write.
func Open(dir string) (*Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	c := &Cache{root: abs, uid: os.Geteuid()}
	if c.dir, err = openTrusted(abs, c.uid); err != nil {
		return nil, err
	}
	c.root = c.dir.Name() // links resolved
	var st unix.Stat_t
	if err := unix.Fstat(int(c.dir.Fd()), &st); err == nil && st.Mode&0o077 != 0 {
		_ = unix.Fchmod(int(c.dir.Fd()), 0o700) // the cache is private
	}
	for _, s := range []struct {
		f   **os.File
		rel string
	}{{&c.blobs, "blobs/sha256"}, {&c.sifs, "sif/sha256"}, {&c.locks, "locks"}} {
		if *s.f, err = openSub(c.dir, s.rel, c.uid); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Close closes the cache's directories.
func (c *Cache) Close() error {
	for _, f := range []*os.File{c.dir, c.blobs, c.sifs, c.locks} {
		if f != nil {
			f.Close()
		}
	}
	return nil
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

// Lock takes the exclusive lock of entry (kind, d), waiting for another
// process that holds it; unlock releases it.
func (c *Cache) Lock(ctx context.Context, kind string, d v1.Hash) (unlock func(), err error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, _, err := openEntry(c.locks, kind+"-"+d.Hex+".lock", unix.O_RDWR|unix.O_CREAT, c.uid)
	if err != nil {
		return nil, fmt.Errorf("locking: %w", err)
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking cache entry %s: %w", f.Name(), err)
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

// warn passes a warning to c.Warn, when set.
func (c *Cache) warn(format string, a ...any) {
	if c.Warn != nil {
		c.Warn(format, a...)
	}
}

// touch records now as the last use of the entry name in dir, for List.
func touch(dir *os.File, name string) {
	now := unix.NsecToTimespec(time.Now().UnixNano())
	_ = unix.UtimesNanoAt(int(dir.Fd()), name, []unix.Timespec{now, now}, unix.AT_SYMLINK_NOFOLLOW)
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
// first within each. A SIF was last used when its digest record was
// (the SIF itself is never touched: that would change its ctime).
func (c *Cache) List() ([]Entry, error) {
	var out []Entry
	for _, k := range []struct {
		kind   string
		dir    *os.File
		suffix string
	}{
		{KindBlob, c.blobs, ""}, {KindSIF, c.sifs, sifSuffix},
	} {
		names, err := readNames(k.dir)
		if err != nil {
			return nil, fmt.Errorf("listing cache %s: %w", c.root, err)
		}
		var part []Entry
		for _, n := range names {
			hexd, ok := strings.CutSuffix(n, k.suffix)
			if !ok || !isHexDigest(hexd) {
				continue // temporary file or digest record
			}
			var st unix.Stat_t
			if err := unix.Fstatat(int(k.dir.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			used := st.Mtim
			var rst unix.Stat_t
			if k.kind == KindSIF && unix.Fstatat(int(k.dir.Fd()), n+recordSuffix, &rst, unix.AT_SYMLINK_NOFOLLOW) == nil {
				used = rst.Mtim
			}
			part = append(part, Entry{Kind: k.kind, Digest: "sha256:" + hexd, Size: st.Size,
				Used: time.Unix(used.Unix()), Path: filepath.Join(k.dir.Name(), n)})
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Used.After(part[j].Used) })
		out = append(out, part...)
	}
	return out, nil
}

// readNames lists the names in the directory dir.
func readNames(dir *os.File) ([]string, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), dir.Name())
	defer d.Close()
	return d.Readdirnames(-1)
}

// Clean removes the entries of the given kinds (all when none given) and
// returns how many entries and bytes went. Processes using an entry at that
// moment keep reading their open copy.
func (c *Cache) Clean(kinds ...string) (int, int64, error) {
	ents, err := c.CleanWith(CleanOptions{Kinds: kinds})
	var size int64
	for _, e := range ents {
		size += e.Size
	}
	return len(ents), size, err
}

// CleanOptions selects the entries CleanWith removes.
type CleanOptions struct {
	// Kinds are the kinds to remove (KindBlob, KindSIF); all when empty.
	Kinds []string
	// UsedBefore, when not zero, keeps the entries last used at or after it.
	UsedBefore time.Time
	// DryRun removes nothing: CleanWith only returns what it would remove.
	DryRun bool
}

// CleanWith removes the entries o selects and returns them (those removed
// before an error, with the error).
func (c *Cache) CleanWith(o CleanOptions) ([]Entry, error) {
	ents, err := c.List()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, k := range o.Kinds {
		want[k] = true
	}
	var gone []Entry
	for _, e := range ents {
		if len(want) > 0 && !want[e.Kind] || !o.UsedBefore.IsZero() && !e.Used.Before(o.UsedBefore) {
			continue
		}
		if !o.DryRun {
			dir := c.blobs
			if e.Kind == KindSIF {
				dir = c.sifs
			}
			if err := removeEntry(dir, filepath.Base(e.Path)); err != nil {
				return gone, err
			}
		}
		gone = append(gone, e)
	}
	return gone, nil
}

// removeEntry removes the entry name of dir, and its digest record.
func removeEntry(dir *os.File, name string) error {
	for _, n := range []string{name, name + recordSuffix} {
		if err := unix.Unlinkat(int(dir.Fd()), n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing %s: %w", filepath.Join(dir.Name(), n), err)
		}
	}
	return nil
}
