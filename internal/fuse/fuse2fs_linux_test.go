package fuse

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/reap"
)

// TestMountExt3 mounts an ext3 image with fuse2fs on a shared mount point
// (the mount, made in fuse2fs's own mount namespace, must show here), writes
// to it, stops fuse2fs with Hangup and checks that it exited by itself and
// left the image clean for e2fsck. It runs itself again in a new user and
// mount namespace.
func TestMountExt3(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		for _, tool := range []string{"unshare", "fuse2fs", "mkfs.ext3", "e2fsck"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed", tool)
			}
		}
		if err := exec.Command("unshare", "-Urm", "true").Run(); err != nil {
			t.Skipf("no user namespaces here: %v", err)
		}
		cmd := exec.Command("unshare", "-Urm", os.Args[0], "-test.run=^TestMountExt3$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a new user and mount namespace: %v\n%s", err, out)
		}
		t.Logf("in a new user and mount namespace:\n%s", out)
		return
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ov.img")
	if out, err := exec.Command("mkfs.ext3", "-q", "-F", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext3: %v\n%s", err, out)
	}
	bin, err := FindFuse2fs("")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "mnt")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("t", target, "tmpfs", 0, "size=16k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	if err := unix.Mount("", target, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := MountExt3(Ext3Options{Image: f, Target: target, Binary: bin, Fork: plainFork{}})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := os.WriteFile(filepath.Join(target, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte("x"), 0o644); err != nil {
			t.Fatalf("writing to the fuse2fs mount: %v (stderr %s)", err, srv.Stderr())
		}
	}
	srv.Hangup()
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(srv.Pid, &ws, 0, nil)
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("fuse2fs did not exit cleanly on SIGHUP: %v (stderr %s)", ws, srv.Stderr())
		}
		srv.Exited(reap.Exit{Pid: srv.Pid, Status: ws})
	case <-time.After(30 * time.Second):
		srv.Stop()
		t.Fatal("fuse2fs still running 30 s after SIGHUP")
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after the stop: %v\n%s", err, out)
	}
	// A bad image: the error says what fuse2fs said.
	junk := filepath.Join(dir, "junk")
	_ = os.WriteFile(junk, make([]byte, 8192), 0o644)
	j, _ := os.Open(junk)
	defer j.Close()
	target2 := filepath.Join(dir, "mnt2")
	_ = os.Mkdir(target2, 0o755)
	if s, err := MountExt3(Ext3Options{Image: j, Target: target2, ReadOnly: true, Binary: bin, Fork: plainFork{}, Timeout: 10 * time.Second}); err == nil {
		t.Errorf("fuse2fs mounted a file of zeros")
	} else if s != nil {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(s.Pid, &ws, 0, nil)
		t.Logf("bad image: %v", err)
	}
}
