package fuse

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// childEnv marks the run of this test binary inside a new user and mount
// namespace (unshare -Urm), where it may mount FUSE filesystems.
const childEnv = "LAUNCH_FUSE_TEST_IN_NAMESPACE"

// TestMount mounts a SquashFS both ways Mount can, on a mount point with
// mount(2) and detached then attached with Attach, and reads a file of it.
// It runs itself again in a new user and mount namespace.
func TestMount(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		for _, tool := range []string{"unshare", "mksquashfs", "squashfuse_ll"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed", tool)
			}
		}
		if err := exec.Command("unshare", "-Urm", "true").Run(); err != nil {
			t.Skipf("no user namespaces here: %v", err)
		}
		cmd := exec.Command("unshare", "-Urm", os.Args[0], "-test.run=^TestMount$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a new user and mount namespace: %v\n%s", err, out)
		}
		t.Logf("in a new user and mount namespace:\n%s", out)
		return
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "hello"), []byte("world"), 0o644); err != nil {
		t.Fatal(err)
	}
	sqfs := filepath.Join(dir, "img.sqfs")
	if out, err := exec.Command("mksquashfs", tree, sqfs, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	bin, err := FindSquashfuse([]string{"squashfuse_ll"})
	if err != nil {
		t.Fatal(err)
	}
	for _, detached := range []bool{false, true} {
		img, err := os.Open(sqfs)
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "mnt")
		if detached {
			target += "-detached"
		}
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		o := MountOptions{Image: img, Target: target, UID: os.Getuid(), GID: os.Getgid(), Binary: bin, Start: start}
		if detached {
			o.Target = ""
		}
		srv, err := Mount(o)
		img.Close()
		if err != nil {
			t.Fatalf("detached %v: %v", detached, err)
		}
		if (srv.Mount != nil) != detached {
			t.Errorf("detached %v: Server.Mount is %v", detached, srv.Mount)
		}
		if detached {
			if err := srv.Attach(target); err != nil {
				t.Fatal(err)
			}
			if srv.Mount != nil {
				t.Errorf("Server.Mount still set after Attach")
			}
			if err := srv.Attach(target); err == nil {
				t.Errorf("a second Attach did not fail")
			}
		}
		got, err := os.ReadFile(filepath.Join(target, "hello"))
		if err != nil || string(got) != "world" {
			t.Errorf("detached %v: read %q, %v; want \"world\" (server stderr: %s)", detached, got, err, srv.Stderr())
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if !strings.Contains(string(mi), " "+target+" ro,nosuid,nodev") || !strings.Contains(string(mi), "fuse.squashfuse squashfuse ro,") {
			t.Errorf("detached %v: mount of %s not read-only, nosuid, nodev fuse.squashfuse in:\n%s", detached, target, mi)
		}
		srv.Stop()
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(srv.Pid, &ws, 0, nil); err != nil {
			t.Errorf("reaping the server: %v", err)
		}
		_ = syscall.Unmount(target, syscall.MNT_DETACH)
	}
}

// start forks the server as the stage does, minus the reaper and signals.
func start(argv []string, files []*os.File, stderr *os.File) (int, error) {
	fds := []uintptr{0, stderr.Fd(), stderr.Fd()}
	for _, f := range files {
		fds = append(fds, f.Fd())
	}
	return syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Dir: "/", Env: os.Environ(), Files: fds})
}
