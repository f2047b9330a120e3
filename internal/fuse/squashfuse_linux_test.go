package fuse

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/launch-hpc/launch/internal/reap"
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
	prog, err := FindSquashfuse([]string{"squashfuse_ll"})
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
		o := MountOptions{Image: img, Target: target, UID: os.Getuid(), GID: os.Getgid(), Program: prog, Fork: plainFork{}}
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
		if !srv.Live() || srv.LivePid() != srv.Pid {
			t.Errorf("a running server is not live")
		}
		srv.Stop()
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(srv.Pid, &ws, 0, nil); err != nil {
			t.Errorf("reaping the server: %v", err)
		}
		if srv.Exited(reap.Exit{Pid: srv.Pid + 1, Status: ws}) || !srv.Live() {
			t.Errorf("another pid's exit taken for the server's")
		}
		if !srv.Exited(reap.Exit{Pid: srv.Pid, Status: ws}) || srv.Live() || srv.LivePid() != -1 || !srv.Status().Signaled() {
			t.Errorf("the server's exit not taken: live %v, status %v", srv.Live(), srv.Status())
		}
		if srv.Exited(reap.Exit{Pid: srv.Pid, Status: ws}) {
			t.Errorf("a reaped server's pid taken again")
		}
		_ = syscall.Unmount(target, syscall.MNT_DETACH)
	}
}

// plainFork forks the server as the stage does, minus the reaper and the
// locked thread.
type plainFork struct{}

func (plainFork) ForkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, error) {
	return syscall.ForkExec(argv0, argv, attr)
}

// TestStartServer checks what start gives a server: the blocked signals,
// the environment, stdin from /dev/null, the captured stderr, and the
// files at 3, 4, ….
func TestStartServer(t *testing.T) {
	runtime.LockOSThread() // the mask is the forking thread's, as in the stage
	defer runtime.UnlockOSThread()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	script := `echo "env=$(env | sort | tr '\n' ' ')" >&2; ls -l /proc/self/fd/0 /proc/self/fd/3 >&2; exit 0`
	blk, err := start(plainFork{}, []string{"/bin/grep", "SigBlk", "/proc/self/status"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(plainFork{}, []string{"/bin/sh", "-c", script}, []*os.File{f}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	for _, pid := range []int{blk.Pid, srv.Pid} {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	var out string
	for i := 0; i < 200; i++ { // the drain goroutine reads on
		if out = blk.Stderr() + srv.Stderr(); strings.Contains(out, "/proc/self/fd/3") && strings.Contains(out, "SigBlk") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// HUP INT QUIT USR1 USR2 PIPE ALRM TERM = bits 0 1 2 9 11 12 13 14.
	if !strings.Contains(out, "SigBlk:\t0000000000007a07") {
		t.Errorf("blocked mask not the job-step signals:\n%s", out)
	}
	if !strings.Contains(out, "GLIBC_TUNABLES=glibc.malloc.mmap_threshold") || strings.Contains(out, "HOME=") {
		t.Errorf("environment not serverEnv alone:\n%s", out)
	}
	if strings.Count(out, "-> /dev/null") != 2 {
		t.Errorf("stdin and fd 3 not /dev/null:\n%s", out)
	}
}
