// Package e2e tests the built launch binary end to end: real squashfuse, real
// images, run as whichever user executes the test binary. scripts/test runs
// this package once as root and once as an unprivileged user.
package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// launchBin is the binary under test: $LAUNCH_BINARY, else ../builddir/launch.
func launchBin(t testing.TB) string {
	t.Helper()
	p := os.Getenv("LAUNCH_BINARY")
	if p == "" {
		p = "../builddir/launch"
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("launch binary not found at %s (build it with make, or set LAUNCH_BINARY): %v", abs, err)
	}
	return abs
}

// result is what one run of the binary produced.
type result struct {
	Stdout, Stderr string
	Code           int
}

// runOpts tweaks one run of the binary.
type runOpts struct {
	Dir     string        // working directory ("" = test's current)
	Env     []string      // extra environment (appended to the test's)
	Stdin   string        // standard input
	Timeout time.Duration // 0 = 60s
}

// launch runs the binary with args and returns what it printed and its exit status.
func launch(t testing.TB, args ...string) result {
	t.Helper()
	return launchWith(t, runOpts{}, args...)
}

// launchWith is launch with options.
func launchWith(t testing.TB, o runOpts, args ...string) result {
	t.Helper()
	return runCmd(t, o, nil, args...)
}

// launchVia runs the binary through a wrapper command (wrapper..., launch, args...).
func launchVia(t testing.TB, wrapper []string, args ...string) result {
	t.Helper()
	return runCmd(t, runOpts{}, wrapper, args...)
}

func runCmd(t testing.TB, o runOpts, wrapper []string, args ...string) result {
	t.Helper()
	argv := append(append(append([]string{}, wrapper...), launchBin(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdin = strings.NewReader(o.Stdin)
	return runProcess(t, cmd, o.Timeout)
}

// runProcess runs cmd to its end and returns what it printed (unless cmd
// sends its output elsewhere) and its shell-style exit status (exitStatus).
// It fails the test if cmd cannot start or is still running after timeout
// (0: 60 s), when it is killed. Every e2e test that runs a command to its
// end goes through here.
func runProcess(t testing.TB, cmd *exec.Cmd, timeout time.Duration) result {
	t.Helper()
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		_ = cmd.Process.Kill()
	})
	err := cmd.Wait()
	timer.Stop()
	r := result{Stdout: out.String(), Stderr: errb.String(), Code: exitStatus(err)}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %v: %v", cmd.Args, err)
	}
	if timedOut.Load() {
		t.Fatalf("%v timed out after %v; stdout %q stderr %q", cmd.Args, timeout, r.Stdout, r.Stderr)
	}
	return r
}

// exitStatus turns cmd.Wait's error into a shell-style status.
func exitStatus(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// wantFatal checks the launcher-error convention: exit 255, exactly one line
// on stderr starting with FATAL that contains every string in want, and no Go
// stack trace.
func wantFatal(t testing.TB, r result, want ...string) {
	t.Helper()
	if r.Code != 255 {
		t.Errorf("exit status %d, want 255; stderr: %q", r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "FATAL:") {
		t.Errorf("stderr should be one FATAL line, got %q", r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr %q does not mention %q", r.Stderr, w)
		}
	}
	if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic:") {
		t.Errorf("stderr has a Go stack trace: %s", r.Stderr)
	}
}

// wantOK fails the test unless r exited 0.
func wantOK(t testing.TB, r result) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit status %d, want 0; stderr: %s; stdout: %s", r.Code, r.Stderr, r.Stdout)
	}
}

// busyboxTree makes a minimal root filesystem from the static busybox:
// /bin/busybox with applet symlinks, /etc/passwd and /etc/group with root only,
// and the usual top-level directories. It returns the tree's path.
func busyboxTree(t testing.TB) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed (scripts/install-deps installs it): %v", err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "home", "tmp", "var/tmp", "proc", "sys", "dev", "root", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// buildSIF packs tree into a SIF with the binary under test and returns its path.
func buildSIF(t testing.TB, tree string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.sif")
	wantOK(t, launch(t, "build", "-q", out, tree))
	return out
}

// isImageServer reports whether a process's command line is that of a
// FUSE server of an image: launch's own or a squashfuse.
func isImageServer(cmdline string) bool {
	return strings.Contains(cmdline, "launch-squashfs") || strings.Contains(cmdline, "squashfuse")
}

// isRoot reports whether the tests run as root.
func isRoot() bool { return os.Geteuid() == 0 }
