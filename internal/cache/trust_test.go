package cache

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// otherUID is a uid that is not the test's (nobody), for the cases that
// need files of another user (root only).
const otherUID = 65534

// TestOpenRefusesUntrustedDirs: a cache directory that another user can
// have put entries in is refused, with an error naming the directory.
func TestOpenRefusesUntrustedDirs(t *testing.T) {
	root := os.Geteuid() == 0
	cases := []struct {
		name     string
		rootOnly bool
		// setup prepares base and returns the cache directory to open
		// and the path the error must name ("" = it opens).
		setup func(t *testing.T, base string) (dir, culprit string)
		want  string
	}{
		{name: "fresh", setup: func(t *testing.T, b string) (string, string) { return b + "/a/b/cache", "" }},
		{name: "mine-0755-is-made-private", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o755)
			return b + "/c", ""
		}},
		{name: "writable-by-others", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o777)
			return b + "/c", b + "/c"
		}, want: "writable by other users (mode 0777)"},
		{name: "group-writable", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o770)
			return b + "/c", b + "/c"
		}, want: "writable by other users"},
		{name: "parent-writable-not-sticky", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/p", 0o777)
			mkdir(t, b+"/p/c", 0o700)
			return b + "/p/c", b + "/p"
		}, want: "writable by other users and not sticky"},
		{name: "parent-sticky", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/p", 0o1777)
			return b + "/p/c", ""
		}},
		{name: "a-subdirectory-writable-by-others", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o700)
			mkdir(t, b+"/c/sif", 0o700)
			mkdir(t, b+"/c/sif/sha256", 0o777)
			return b + "/c", b + "/c/sif/sha256"
		}, want: "writable by other users"},
		{name: "a-subdirectory-is-a-link", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o700)
			mkdir(t, b+"/elsewhere", 0o700)
			symlink(t, b+"/elsewhere", b+"/c/locks")
			return b + "/c", b + "/c/locks"
		}, want: "not a directory"},
		{name: "my-link-is-followed", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/real", 0o700)
			symlink(t, "../real", b+"/p/link")
			return b + "/p/link", ""
		}},
		{name: "a-link-to-a-dir-writable-by-others", setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/open", 0o777)
			symlink(t, b+"/open", b+"/link")
			return b + "/link/c", b + "/open"
		}, want: "not sticky"},
		{name: "a-file", setup: func(t *testing.T, b string) (string, string) {
			if err := os.WriteFile(b+"/f", nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return b + "/f/c", b + "/f"
		}, want: "not a directory"},
		{name: "owned-by-another-user", rootOnly: true, setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/c", 0o700)
			chown(t, b+"/c")
			return b + "/c", b + "/c"
		}, want: "belongs to uid 65534, not to you"},
		{name: "parent-owned-by-another-user", rootOnly: true, setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/p", 0o755)
			mkdir(t, b+"/p/c", 0o700)
			chown(t, b+"/p")
			return b + "/p/c", b + "/p"
		}, want: "belongs to uid 65534, neither you nor root"},
		{name: "sticky-parent-owned-by-another-user", rootOnly: true, setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/p", 0o1777)
			chown(t, b+"/p")
			return b + "/p/c", b + "/p"
		}, want: "neither you nor root"},
		{name: "a-link-of-another-user", rootOnly: true, setup: func(t *testing.T, b string) (string, string) {
			mkdir(t, b+"/sticky", 0o1777)
			mkdir(t, b+"/real", 0o700)
			symlink(t, b+"/real", b+"/sticky/c")
			if err := os.Lchown(b+"/sticky/c", otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			return b + "/sticky/c", b + "/sticky/c"
		}, want: "symbolic link of uid 65534"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.rootOnly && !root {
				t.Skip("needs root, to make files of another user")
			}
			base := t.TempDir()
			dir, culprit := c.setup(t, base)
			ca, err := Open(dir)
			if culprit == "" {
				if err != nil {
					t.Fatalf("Open(%s): %v", dir, err)
				}
				defer ca.Close()
				fi, err := os.Stat(dir)
				if err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("cache directory: %v %v, want mode 0700", fi.Mode(), err)
				}
				real, _ := filepath.EvalSymlinks(dir)
				if ca.Dir() != real {
					t.Errorf("Dir() = %s, want %s", ca.Dir(), real)
				}
				return
			}
			if err == nil {
				ca.Close()
				t.Fatalf("Open(%s) succeeded, want it refused because of %s", dir, culprit)
			}
			if e := err.Error(); !strings.Contains(e, culprit+" ") || !strings.Contains(e, c.want) || strings.Contains(e, "\n") {
				t.Errorf("Open(%s): %q, want one line naming %s and saying %q", dir, e, culprit, c.want)
			}
		})
	}
}

// TestOpenSIFRecord: a cached SIF is used while it is what was recorded
// when it was made; changed, unrecorded, or not a plain file of the
// user's, it is not used (removed, with a warning) and never blocks.
func TestOpenSIFRecord(t *testing.T) {
	d := digestOf([]byte("manifest"))
	content := []byte(strings.Repeat("SIF data ", 1000))
	cases := []struct {
		name     string
		rootOnly bool
		tamper   func(t *testing.T, c *Cache) // after AddSIF
		use      bool                         // OpenSIF still returns it
	}{
		{name: "unchanged", use: true},
		{name: "touched-same-content", use: true, tamper: func(t *testing.T, c *Cache) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(c.SIFPath(d), later, later); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rewritten-in-place", tamper: func(t *testing.T, c *Cache) {
			// Same size and mtime as before: only ctime and the content tell.
			fi, _ := os.Stat(c.SIFPath(d))
			writeFile(t, c.SIFPath(d), []byte(strings.Repeat("EVIL data", 1000)), 0o600)
			os.Chtimes(c.SIFPath(d), fi.ModTime(), fi.ModTime())
		}},
		{name: "replaced", tamper: func(t *testing.T, c *Cache) {
			os.Remove(c.SIFPath(d))
			writeFile(t, c.SIFPath(d), []byte("planted"), 0o600)
		}},
		{name: "no-record", tamper: func(t *testing.T, c *Cache) {
			os.Remove(c.SIFPath(d) + recordSuffix)
		}},
		{name: "malformed-record", tamper: func(t *testing.T, c *Cache) {
			writeFile(t, c.SIFPath(d)+recordSuffix, []byte("launch-cache-sif/1 nonsense\n"), 0o600)
		}},
		{name: "a-fifo", tamper: func(t *testing.T, c *Cache) {
			os.Remove(c.SIFPath(d))
			if err := syscall.Mkfifo(c.SIFPath(d), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a-link", tamper: func(t *testing.T, c *Cache) {
			other := filepath.Join(t.TempDir(), "other.sif")
			writeFile(t, other, content, 0o600)
			os.Remove(c.SIFPath(d))
			symlink(t, other, c.SIFPath(d))
		}},
		{name: "writable-by-others", tamper: func(t *testing.T, c *Cache) {
			os.Chmod(c.SIFPath(d), 0o666)
		}},
		{name: "another-users", rootOnly: true, tamper: func(t *testing.T, c *Cache) {
			chown(t, c.SIFPath(d))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root, to make files of another user")
			}
			c, err := Open(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var warned string
			c.Warn = func(f string, a ...any) { warned = f }
			if f, err := c.OpenSIF(d); f != nil || err != nil {
				t.Fatalf("OpenSIF of an empty cache = %v, %v", f, err)
			}
			writeFile(t, c.SIFPath(d), content, 0o644)
			f, err := c.AddSIF(d)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if tc.tamper != nil {
				tc.tamper(t, c)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				f, err = c.OpenSIF(d)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("OpenSIF blocked")
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.use {
				if f != nil {
					f.Close()
					t.Fatalf("OpenSIF returned the entry, want it refused")
				}
				if !strings.Contains(warned, "not using the cached SIF") {
					t.Errorf("no warning: %q", warned)
				}
				if _, err := os.Lstat(c.SIFPath(d)); err == nil {
					t.Errorf("the refused entry is still there")
				}
				return
			}
			if f == nil {
				t.Fatalf("OpenSIF refused the entry (%q), want it used", warned)
			}
			defer f.Close()
			b := make([]byte, len(content)+1)
			if n, _ := f.Read(b); string(b[:n]) != string(content) {
				t.Errorf("OpenSIF's file reads %d other bytes", n)
			}
			if ents, _ := c.List(); len(ents) != 1 || ents[0].Kind != KindSIF || ents[0].Digest != d.String() {
				t.Errorf("List = %+v, want the one SIF (no digest record listed)", ents)
			}
		})
	}
}

// TestSIFRecordTrustedWhileUnchanged: while the file's device, inode,
// size, mtime and ctime are those recorded, the recorded digest is
// trusted without reading the SIF (the cost of a cached pull stays one
// copy); once they change, it is read and compared again.
func TestSIFRecordTrustedWhileUnchanged(t *testing.T) {
	d := digestOf([]byte("manifest"))
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeFile(t, c.SIFPath(d), []byte("the image"), 0o644)
	f, err := c.AddSIF(d)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	rp := c.SIFPath(d) + recordSuffix
	b, err := os.ReadFile(rp)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	// A record whose digest is wrong but whose file identity is right is
	// believed: no read of the SIF.
	r.sha256 = strings.Repeat("0", 64)
	writeFile(t, rp, []byte(r.String()), 0o600)
	if f, _ := c.OpenSIF(d); f == nil {
		t.Fatal("the unchanged entry was read again, want its record trusted")
	} else {
		f.Close()
	}
	// Touch the SIF: its ctime changes, so it is hashed, and does not match.
	later := time.Now().Add(time.Hour)
	os.Chtimes(c.SIFPath(d), later, later)
	if f, _ := c.OpenSIF(d); f != nil {
		f.Close()
		t.Fatal("a changed entry was not hashed again")
	}
}

// mkdir makes p with mode (unix bits: 0o1000 is sticky).
func mkdir(t *testing.T, p string, mode uint32) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string) {
	t.Helper()
	if err := unix.Lchown(p, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}
