package share

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUserKey: the key is made once (KeyLen random bytes, mode 0600) in the
// runtime directory when that is the user's own, else in ~/.launch, and
// the same key is read afterwards, also by launches that start together;
// a key file or directory anyone else could have written or read is not
// used.
func TestUserKey(t *testing.T) {
	uid := os.Getuid()
	envOf := func(rd string) func(string) string {
		return func(k string) string {
			if k == "XDG_RUNTIME_DIR" {
				return rd
			}
			return ""
		}
	}
	keyAt := func(t *testing.T, p string) []byte {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("no key file: %v", err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode())
		}
		b, _ := os.ReadFile(p)
		return b
	}

	t.Run("runtime-dir", func(t *testing.T) {
		rd, home := t.TempDir(), t.TempDir()
		k, err := UserKey(uid, home, envOf(rd))
		if err != nil || len(k) != KeyLen {
			t.Fatalf("UserKey = %x, %v", k, err)
		}
		if got := keyAt(t, filepath.Join(rd, keyFile)); !bytes.Equal(got, k) {
			t.Errorf("key file holds %x, UserKey said %x", got, k)
		}
		if _, err := os.Stat(filepath.Join(home, ".launch")); err == nil {
			t.Errorf("~/.launch made although the runtime directory was usable")
		}
		again, err := UserKey(uid, home, envOf(rd))
		if err != nil || !bytes.Equal(again, k) {
			t.Errorf("second UserKey = %x, %v; want the same key %x", again, err, k)
		}
	})

	t.Run("home-when-runtime-dir-unusable", func(t *testing.T) {
		for _, rd := range []string{"", "relative", "/nonexistent/run", mode(t, t.TempDir(), 0o777)} {
			home := t.TempDir()
			k, err := UserKey(uid, home, envOf(rd))
			if err != nil || len(k) != KeyLen {
				t.Fatalf("XDG_RUNTIME_DIR=%q: UserKey = %x, %v", rd, k, err)
			}
			if got := keyAt(t, filepath.Join(home, ".launch", keyFile)); !bytes.Equal(got, k) {
				t.Errorf("XDG_RUNTIME_DIR=%q: ~/.launch/%s holds %x, UserKey said %x", rd, keyFile, got, k)
			}
			if fi, _ := os.Stat(filepath.Join(home, ".launch")); fi == nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("~/.launch: %v, want a directory of mode 0700", fi)
			}
		}
	})

	t.Run("concurrent-first-use", func(t *testing.T) {
		rd := t.TempDir()
		keys := make([][]byte, 16)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := UserKey(uid, "", envOf(rd))
				if err != nil {
					t.Error(err)
				}
				keys[i] = k
			}()
		}
		wg.Wait()
		for i, k := range keys {
			if !bytes.Equal(k, keys[0]) {
				t.Errorf("launch %d got key %x, launch 0 %x", i, k, keys[0])
			}
		}
		if ents, _ := os.ReadDir(rd); len(ents) != 1 {
			t.Errorf("runtime directory holds %d files, want only %s", len(ents), keyFile)
		}
	})

	for _, c := range []struct {
		name  string
		plant func(t *testing.T, p string)
		want  string
	}{
		{"readable-by-others", func(t *testing.T, p string) { write(t, p, strings.Repeat("k", KeyLen), 0o644) }, "only uid"},
		{"short", func(t *testing.T, p string) { write(t, p, "k", 0o600) }, "bytes, want"},
		{"a-link", func(t *testing.T, p string) {
			other := filepath.Join(t.TempDir(), "k")
			write(t, other, strings.Repeat("k", KeyLen), 0o600)
			if err := os.Symlink(other, p); err != nil {
				t.Fatal(err)
			}
		}, "a symbolic link"},
		{"a-fifo", func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run("refused-"+c.name, func(t *testing.T) {
			rd := t.TempDir()
			c.plant(t, filepath.Join(rd, keyFile))
			// No home: the runtime directory's bad key is the only one.
			k, err := UserKey(uid, "", envOf(rd))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), keyFile) {
				t.Errorf("UserKey with a planted key file = %x, %v; want an error saying %q", k, err, c.want)
			}
		})
	}
}

func mode(t *testing.T, p string, m uint32) string {
	t.Helper()
	if err := unix.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t *testing.T, p, s string, m os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), m); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkUserKey is the cost UserKey adds to every shared launch: the
// key read from the runtime directory (tmpfs on most systems) or from
// ~/.launch (here: where TMPDIR is).
func BenchmarkUserKey(b *testing.B) {
	for _, c := range []struct{ name, rd string }{{"runtime-dir", "/dev/shm"}, {"home", ""}} {
		b.Run(c.name, func(b *testing.B) {
			var rd, home string
			if c.rd != "" {
				d, err := os.MkdirTemp(c.rd, "launch-bench-")
				if err != nil {
					b.Skip(err)
				}
				defer os.RemoveAll(d)
				rd = d
			} else {
				home = b.TempDir()
			}
			env := func(k string) string {
				if k == "XDG_RUNTIME_DIR" {
					return rd
				}
				return ""
			}
			if _, err := UserKey(os.Getuid(), home, env); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := UserKey(os.Getuid(), home, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
