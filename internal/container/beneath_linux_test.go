package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// rawMode returns the mode bits of p as the kernel has them (lstat).
func rawMode(t *testing.T, p string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode &^ unix.S_IFMT
}

func TestPrepareWorkdir(t *testing.T) {
	dirs := []WorkdirDir{{"tmp", 0o777 | unix.S_ISVTX}, {"var_tmp", 0o777 | unix.S_ISVTX}, {"scratch/out_run", 0o700}}
	cases := []struct {
		name  string
		setup func(t *testing.T, wd, victim string) // plants something in wd
		err   string                                // "" for success; else in the error
		bad   string                                // the path the error must name
	}{
		{"fresh", func(*testing.T, string, string) {}, "", ""},
		{"own directories with other modes", func(t *testing.T, wd, _ string) {
			for _, d := range []string{"tmp", "var_tmp", "scratch", "scratch/out_run"} {
				mustMkdir(t, filepath.Join(wd, d), 0o755)
			}
		}, "", ""},
		{"tmp a link to the victim", func(t *testing.T, wd, victim string) {
			mustSymlink(t, victim, filepath.Join(wd, "tmp"))
		}, "is a symbolic link", "tmp"},
		{"var_tmp a relative link", func(t *testing.T, wd, _ string) {
			mustMkdir(t, filepath.Join(wd, "elsewhere"), 0o755)
			mustSymlink(t, "elsewhere", filepath.Join(wd, "var_tmp"))
		}, "is a symbolic link", "var_tmp"},
		{"scratch a link: nothing made in its target", func(t *testing.T, wd, victim string) {
			mustSymlink(t, victim, filepath.Join(wd, "scratch"))
		}, "is a symbolic link", "scratch"},
		{"a dangling link", func(t *testing.T, wd, victim string) {
			mustSymlink(t, filepath.Join(victim, "new"), filepath.Join(wd, "tmp"))
		}, "is a symbolic link", "tmp"},
		{"a file", func(t *testing.T, wd, _ string) {
			if err := os.WriteFile(filepath.Join(wd, "tmp"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is not a directory", "tmp"},
		{"a FIFO", func(t *testing.T, wd, _ string) {
			if err := unix.Mkfifo(filepath.Join(wd, "var_tmp"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is not a directory", "var_tmp"},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, struct {
			name  string
			setup func(t *testing.T, wd, victim string)
			err   string
			bad   string
		}{"another user's directory", func(t *testing.T, wd, _ string) {
			p := filepath.Join(wd, "scratch")
			mustMkdir(t, p, 0o777)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "is owned by uid 65534", "scratch"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			wd, victim := filepath.Join(base, "wd"), filepath.Join(base, "victim")
			mustMkdir(t, wd, 0o755)
			mustMkdir(t, victim, 0o700)
			c.setup(t, wd, victim)
			err := PrepareWorkdir(wd, dirs, os.Getuid())
			if got := rawMode(t, victim); got != 0o700 {
				t.Errorf("the victim's directory is now mode %o", got)
			}
			if e, _ := os.ReadDir(victim); len(e) != 0 {
				t.Errorf("something was made in the victim's directory: %v", e)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), filepath.Join(wd, c.bad)) {
					t.Fatalf("error %v, want %q naming %s", err, c.err, filepath.Join(wd, c.bad))
				}
				// Refused before anything was made.
				for _, d := range []string{"tmp", "var_tmp", "scratch"} {
					if _, err := os.Lstat(filepath.Join(wd, d)); err == nil && d != c.bad {
						t.Errorf("%s was made although %s is refused", d, c.bad)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dirs {
				if got := rawMode(t, filepath.Join(wd, d.Rel)); got != d.Mode {
					t.Errorf("%s: mode %o, want %o", d.Rel, got, d.Mode)
				}
			}
		})
	}
}

func TestOpenWorkdirDir(t *testing.T) {
	wd := t.TempDir()
	mustMkdir(t, filepath.Join(wd, "scratch"), 0o700)
	mustMkdir(t, filepath.Join(wd, "scratch", "a"), 0o700)
	mustSymlink(t, "a", filepath.Join(wd, "scratch", "b"))
	fd, err := openWorkdirDir(wd, "scratch/a", os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := openWorkdirDir(wd, "scratch/b", os.Getuid()); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a link below the workdir: %v, want it refused", err)
	}
	if _, err := openWorkdirDir(wd, "scratch/c", os.Getuid()); !errors.Is(err, unix.ENOENT) {
		t.Errorf("a missing directory: %v, want ENOENT", err)
	}
	if _, err := openWorkdirDir(wd, "../x", os.Getuid()); err == nil {
		t.Errorf("a path above the workdir: no error")
	}
}

func TestWriteInTmpfs(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, outside string) string // returns rel
		err   string
	}{
		{"a file of its own", func(t *testing.T, dir, _ string) string {
			mustWrite(t, filepath.Join(dir, "etc", "passwd"), "a much longer old content\n")
			return "etc/passwd"
		}, ""},
		{"a link to a host file", func(t *testing.T, dir, outside string) string {
			mustSymlink(t, outside, filepath.Join(dir, "etc", "passwd"))
			return "etc/passwd"
		}, "too many levels of symbolic links"},
		{"a link on the way", func(t *testing.T, dir, outside string) string {
			mustSymlink(t, filepath.Dir(outside), filepath.Join(dir, "etc", "sub"))
			return "etc/sub/" + filepath.Base(outside)
		}, "too many levels of symbolic links"},
		{"a hard link to a host file", func(t *testing.T, dir, outside string) string {
			if err := os.Link(outside, filepath.Join(dir, "etc", "passwd")); err != nil {
				t.Skipf("cannot hard-link here: %v", err)
			}
			return "etc/passwd"
		}, "not a file launch made"},
		{"a FIFO", func(t *testing.T, dir, _ string) string {
			if err := unix.Mkfifo(filepath.Join(dir, "etc", "passwd"), 0o666); err != nil {
				t.Fatal(err)
			}
			return "etc/passwd"
		}, "no such device or address"},
		{"climbing out", func(t *testing.T, _, outside string) string {
			return "../" + filepath.Base(filepath.Dir(outside)) + "/" + filepath.Base(outside)
		}, "cross-device link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "tmpfs")
			mustMkdir(t, dir, 0o755)
			mustMkdir(t, filepath.Join(dir, "etc"), 0o755)
			outside := filepath.Join(base, "host", "file")
			mustMkdir(t, filepath.Dir(outside), 0o755)
			mustWrite(t, outside, "host\n")
			rel := c.setup(t, dir, outside)
			var st unix.Stat_t
			if err := unix.Stat(dir, &st); err != nil {
				t.Fatal(err)
			}
			err := writeInTmpfs(dir, st.Dev, rel, []byte("generated\n"))
			if b, _ := os.ReadFile(outside); string(b) != "host\n" {
				t.Errorf("the host file now holds %q", b)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, rel)); string(b) != "generated\n" {
				t.Errorf("the file holds %q", b)
			}
			// Another device than the one launch mounted: refused.
			if err := writeInTmpfs(dir, st.Dev+1, rel, []byte("x")); err == nil || !strings.Contains(err.Error(), "no longer the tmpfs") {
				t.Errorf("on another device: %v", err)
			}
			// The directory itself reached through a link: refused.
			link := filepath.Join(base, "link")
			mustSymlink(t, dir, link)
			if err := writeInTmpfs(link, st.Dev, rel, []byte("x")); !errors.Is(err, syscall.ELOOP) {
				t.Errorf("through a linked directory: %v, want ELOOP", err)
			}
		})
	}
}

func TestCreateInTmpfs(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host")
	mustWrite(t, outside, "host\n")
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	fd, err := createInTmpfs(dfd, "passwd", []byte("generated\n"))
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if b, _ := os.ReadFile(filepath.Join(dir, "passwd")); string(b) != "generated\n" {
		t.Errorf("created file holds %q", b)
	}
	if _, err := createInTmpfs(dfd, "passwd", []byte("again\n")); !errors.Is(err, unix.EEXIST) {
		t.Errorf("an existing file: %v, want EEXIST", err)
	}
	mustSymlink(t, outside, filepath.Join(dir, "group"))
	if _, err := createInTmpfs(dfd, "group", []byte("x")); err == nil {
		t.Errorf("a link in its place: no error")
	}
	if b, _ := os.ReadFile(outside); string(b) != "host\n" {
		t.Errorf("the host file now holds %q", b)
	}
	for _, name := range []string{"", ".", "..", "a/b"} {
		if _, err := createInTmpfs(dfd, name, nil); err == nil {
			t.Errorf("name %q: no error", name)
		}
	}
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
