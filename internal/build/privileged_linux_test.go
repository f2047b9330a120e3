package build

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDropPrivileged: set-uid/set-gid bits go and device nodes are removed
// everywhere in the tree, also below a directory its owner may not enter;
// a symlink to a set-uid file outside is not followed.
func TestDropPrivileged(t *testing.T) {
	root, outside := filepath.Join(t.TempDir(), "rootfs"), t.TempDir()
	for _, d := range []string{"bin", "sgid", "closed/inner"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "victim")
	files := map[string]fs.FileMode{
		"bin/suid": 0o755 | fs.ModeSetuid, "bin/sgid": 0o755 | fs.ModeSetgid, "bin/plain": 0o644,
		"closed/inner/suid": 0o700 | fs.ModeSetuid,
	}
	for f, m := range files {
		p := filepath.Join(root, f)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(victim, []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(victim, 0o755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, "bin", "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "bin", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	devices := 0
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(root, "bin", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err == nil {
			devices = 1
		}
	}
	if err := os.Chmod(filepath.Join(root, "sgid"), 0o755|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "closed"), 0); err != nil {
		t.Fatal(err)
	}

	d, err := dropPrivileged(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.setid != 4 || d.devices != devices {
		t.Errorf("dropped %+v, want 4 set-id entries and %d devices", d, devices)
	}
	if fi, err := os.Lstat(filepath.Join(root, "closed")); err != nil || fi.Mode().Perm() != 0 {
		t.Errorf("closed/ should get its mode back: %v %v", fi, err)
	}
	_ = os.Chmod(filepath.Join(root, "closed"), 0o755)
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := e.Info()
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice) != 0 {
			t.Errorf("%s is still %v", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(root, "bin", "fifo")); fi == nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Error("the FIFO should stay")
	}
	if fi, _ := os.Stat(victim); fi.Mode()&fs.ModeSetuid == 0 {
		t.Error("a symlink was followed out of the tree")
	}
}
