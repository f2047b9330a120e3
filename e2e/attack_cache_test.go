package e2e

// Attacks on the pull cache (issue 14, item 4): another user who owns or
// can write the cache directory, or a directory above it, plants a SIF
// under the name of an image the victim pulls; and a cached SIF changed
// after it was made. launch must refuse such a cache with one FATAL line
// naming the directory, and never hand out a cached SIF that is not what
// it converted.

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cachePull is a registry with the busybox test image, and a victim's
// cache that already holds its converted SIF.
type cachePull struct {
	ref   string // docker://… of the image
	cache string // the victim's LAUNCH_CACHEDIR
	sif   string // the cached SIF in it
	evil  []byte // a valid SIF whose /etc/layer2 says "planted"
}

// newCachePull pushes the image, pulls it once into cache (made with the
// given parent) and makes the planted SIF.
func newCachePull(t *testing.T, cache string) *cachePull {
	t.Helper()
	reg := startRegistry(t)
	cp := &cachePull{ref: "docker://" + reg.push(t, "test/busybox:v1", busyboxOCI(t)), cache: cache}
	wantOK(t, cp.pull(t, filepath.Join(t.TempDir(), "first.sif")))
	sifs, _ := filepath.Glob(filepath.Join(cache, "sif", "sha256", "*.sif"))
	if len(sifs) != 1 {
		t.Fatalf("the first pull left %d cached SIFs, want 1", len(sifs))
	}
	cp.sif = sifs[0]
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "layer2"), []byte("planted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evil, err := os.ReadFile(buildSIF(t, tree))
	if err != nil {
		t.Fatal(err)
	}
	cp.evil = evil
	return cp
}

// pull pulls the image into out with the victim's cache.
func (cp *cachePull) pull(t *testing.T, out string) result {
	t.Helper()
	return launchWith(t, runOpts{Env: []string{"LAUNCH_CACHEDIR=" + cp.cache, "TMPDIR=" + t.TempDir()}, Timeout: 5 * time.Minute},
		"pull", "--nohttps", out, cp.ref)
}

// plant replaces the cached SIF with the planted one, as a new file (a new
// inode, as another user's would be).
func (cp *cachePull) plant(t *testing.T) {
	t.Helper()
	if err := os.Remove(cp.sif); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp.sif, cp.evil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantReal checks that out, if it exists, is the real image, not the
// planted one: the attack fails either way, but a planted image must never
// be what a pull wrote.
func wantReal(t *testing.T, out string, mustExist bool) {
	t.Helper()
	if _, err := os.Stat(out); err != nil {
		if mustExist {
			t.Fatalf("pull wrote no %s: %v", out, err)
		}
		return
	}
	r := launch(t, "exec", out, "cat", "/etc/layer2")
	wantOK(t, r)
	if r.Stdout == "planted\n" {
		t.Fatalf("the pull wrote the SIF planted in the cache: the victim ran it")
	}
	if r.Stdout != "from layer 2\n" {
		t.Errorf("pulled image: /etc/layer2 = %q", r.Stdout)
	}
}

// TestAttackCacheWritableByOthers: a cache directory, or a directory above
// it, that other users can write (not sticky) is refused, so a SIF planted
// there is never used.
func TestAttackCacheWritableByOthers(t *testing.T) {
	cases := []struct {
		name string
		// open makes the directory writable by others and returns it.
		open func(cache string) string
	}{
		{"cache-dir-0777", func(c string) string { return c }},
		{"parent-0777", func(c string) string { return filepath.Dir(c) }},
		{"parent-0775", func(c string) string { return filepath.Dir(c) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := newCachePull(t, filepath.Join(t.TempDir(), "shared", "cache"))
			cp.plant(t)
			dir := c.open(cp.cache)
			mode := os.FileMode(0o777)
			if c.name == "parent-0775" {
				mode = 0o775
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "victim.sif")
			r := cp.pull(t, out)
			wantReal(t, out, false)
			wantFatal(t, r, dir+" ", "writable by other users", "LAUNCH_CACHEDIR")
		})
	}
}

// TestAttackCacheOtherOwner: root's pull with LAUNCH_CACHEDIR in a
// directory another user owns (or below one) is refused. The other user is
// the unprivileged test user; only root can make its files here.
func TestAttackCacheOtherOwner(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root: the victim is root, the owner of the cache the unprivileged test user")
	}
	name := os.Getenv("LAUNCH_E2E_USER")
	if name == "" {
		name = "launchtest"
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s to own the cache (scripts/test creates it): %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	chownAll := func(t *testing.T, dir string) {
		err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		// give hands a directory to the other user and returns it.
		give func(t *testing.T, cache string) string
		want string
	}{
		{"cache-dir", func(t *testing.T, c string) string { chownAll(t, c); return c }, "belongs to uid " + u.Uid + ", not to you"},
		{"parent", func(t *testing.T, c string) string {
			p := filepath.Dir(c)
			if err := os.Lchown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
			return p
		}, "belongs to uid " + u.Uid + ", neither you nor root"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := newCachePull(t, filepath.Join(t.TempDir(), "theirs", "cache"))
			cp.plant(t)
			dir := c.give(t, cp.cache)
			out := filepath.Join(t.TempDir(), "victim.sif")
			r := cp.pull(t, out)
			wantReal(t, out, false)
			wantFatal(t, r, dir+" ", c.want)
		})
	}
}

// TestAttackCacheTamperedSIF: in a cache that is the user's own, a cached
// SIF that is not the one launch made (replaced, rewritten in place, no
// digest record, or, as root, a file of another user's) is not used: the
// pull warns, converts the image again and writes the real one.
func TestAttackCacheTamperedSIF(t *testing.T) {
	cases := []struct {
		name     string
		rootOnly bool
		tamper   func(t *testing.T, cp *cachePull)
		want     string
	}{
		{"replaced", false, func(t *testing.T, cp *cachePull) { cp.plant(t) }, "differs from the digest recorded"},
		{"rewritten-in-place", false, func(t *testing.T, cp *cachePull) {
			if err := os.WriteFile(cp.sif, cp.evil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "differs from the digest recorded"},
		{"no-digest-record", false, func(t *testing.T, cp *cachePull) {
			cp.plant(t)
			if err := os.Remove(cp.sif + ".digest"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}, "no digest was recorded"},
		{"another-users-file", true, func(t *testing.T, cp *cachePull) {
			cp.plant(t)
			if err := os.Lchown(cp.sif, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.rootOnly && !isRoot() {
				t.Skip("needs root, to make a file of another user")
			}
			cp := newCachePull(t, filepath.Join(t.TempDir(), "cache"))
			c.tamper(t, cp)
			out := filepath.Join(t.TempDir(), "victim.sif")
			r := cp.pull(t, out)
			wantOK(t, r)
			wantReal(t, out, true)
			if !mentionsAll(r.Stderr, "not using the cached SIF "+cp.sif, c.want, "converting the image again") {
				t.Errorf("pull should warn that it does not use the cached SIF (%s):\n%s", c.want, r.Stderr)
			}
			// The entry made again is used from then on.
			r = cp.pull(t, filepath.Join(t.TempDir(), "again.sif"))
			if wantOK(t, r); !mentionsAll(r.Stderr, "Using cached SIF") {
				t.Errorf("the pull after should use the SIF made again:\n%s", r.Stderr)
			}
		})
	}
}

// contains reports whether s contains every one of subs.
func mentionsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
