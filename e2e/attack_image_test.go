package e2e

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Attacks by a hostile image on the set-up of the container (issue 14, item
// 6): files the stage reads that are named pipes or huge sparse files, and
// a set-up that waits, which signals and the launcher's death must end.

// fakeServerName is the name under which the e2e binary, executed, plays a
// FUSE server that never answers (see init): the stage then waits on the
// image's first read, as it would on a hung or slow server.
const fakeServerName = "launch-e2e-silent-squashfuse"

func init() {
	if filepath.Base(os.Args[0]) == fakeServerName {
		// Started as the squashfuse of launch.conf: hold /dev/fuse and
		// answer nothing, until killed (the stage's parent-death signal
		// or its clean-up) or a minute has passed.
		time.Sleep(time.Minute)
		os.Exit(1)
	}
}

// silentServerConf writes a launch.conf whose squashfuse is the e2e binary
// as fakeServerName, and returns the LAUNCH_CONF setting naming it and the
// server's path.
func silentServerConf(t *testing.T) (env, server string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, fakeServerName)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "launch.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[tools]\nsquashfuse = [%q]\n", link)), 0o644); err != nil {
		t.Fatal(err)
	}
	return "LAUNCH_CONF=" + conf, link
}

// background is a launch run in the background.
type background struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File      // files, not pipes: what the launcher leaves running cannot hold up Wait
	done           chan struct{} // closed once the launcher has exited
	code           int
}

// startBackground starts the binary with args and env added to the test's.
// Whatever the test's outcome, the launcher and everything below it that
// the test saw are killed at its end, so a failing run (one that hangs)
// leaves nothing behind either.
func startBackground(t *testing.T, env []string, args ...string) *background {
	t.Helper()
	dir := t.TempDir()
	s := &background{cmd: exec.Command(launchBin(t), args...), done: make(chan struct{})}
	var err error
	for _, f := range []**os.File{&s.stdout, &s.stderr} {
		if *f, err = os.CreateTemp(dir, "out"); err != nil {
			t.Fatal(err)
		}
	}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int]string{}
	record := func() {
		procs := descendantsOf(s.cmd.Process.Pid)
		mu.Lock()
		defer mu.Unlock()
		for pid, cl := range procs {
			seen[pid] = cl
		}
	}
	go func() {
		s.code = exitStatus(s.cmd.Wait())
		close(s.done)
	}()
	go func() { // record the tree while it lives, for the clean-up
		for {
			record()
			select {
			case <-s.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			record()
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		mu.Lock()
		defer mu.Unlock()
		for pid, cl := range seen {
			if alive(pid, cl) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		s.stdout.Close()
		s.stderr.Close()
	})
	return s
}

// output is what the launcher printed so far on stream f.
func output(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// wait waits up to d for the launcher to exit, and fails the test if it
// does not.
func (s *background) wait(t *testing.T, d time.Duration, what string) result {
	t.Helper()
	select {
	case <-s.done:
		return result{Stdout: output(s.stdout), Stderr: output(s.stderr), Code: s.code}
	case <-time.After(d):
		t.Fatalf("%s: launch still running after %v (it hangs); stderr: %q", what, d, output(s.stderr))
		return result{}
	}
}

// waitFor polls the launcher's process tree for up to d until a process
// whose command line is the program want (alone or with arguments) appears,
// and returns the tree then. (The stage's own command line holds the
// payload's, further on.)
func (s *background) waitFor(t *testing.T, want string, d time.Duration) map[int]string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		procs := descendantsOf(s.cmd.Process.Pid)
		for _, cl := range procs {
			if cl == want || strings.HasPrefix(cl, want+" ") {
				return procs
			}
		}
		select {
		case <-s.done:
			t.Fatalf("launch exited (status %d) before %q ran; stderr: %q", s.code, want, output(s.stderr))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q under the launcher after %v: %v; stderr: %q", want, d, procs, output(s.stderr))
		}
	}
}

// hostileTree is a busybox tree with a named pipe at each of fifos and a
// copy of the host's dynamically linked `true` at /bin/dyn, with its ELF
// interpreter and libc where the host has them (unless a pipe is made
// there). It skips the test when the host's true is not a dynamically
// linked glibc program.
func hostileTree(t *testing.T, fifos ...string) string {
	t.Helper()
	tree := busyboxTree(t)
	host, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true on the host")
	}
	host, _ = filepath.EvalSymlinks(host)
	interp, libc := hostDeps(t, host)
	for src, dst := range map[string]string{host: "/bin/dyn", interp: interp, libc: libc} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tree, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fifos {
		p := filepath.Join(tree, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(p)
		if err := syscall.Mkfifo(p, 0o755); err != nil {
			t.Fatal(err)
		}
		// Readable and executable by everyone, whatever the umask: open(2)
		// would block on it, not fail.
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// hostDeps returns the ELF interpreter of the host program p and the path
// of the libc it needs (looked for in the usual directories).
func hostDeps(t *testing.T, p string) (interp, libc string) {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Skipf("%s: %v", p, err)
	}
	defer f.Close()
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_INTERP {
			b := make([]byte, pr.Filesz)
			_, _ = pr.ReadAt(b, 0)
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	needed, _ := f.DynString(elf.DT_NEEDED)
	for _, n := range needed {
		if !strings.HasPrefix(n, "libc.") {
			continue
		}
		for _, d := range []string{"/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64", "/lib", "/usr/lib"} {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				libc = filepath.Join(d, n)
				break
			}
		}
	}
	if interp == "" || libc == "" {
		t.Skipf("%s is not a dynamically linked glibc program (interpreter %q, libc %q)", p, interp, libc)
	}
	return interp, libc
}

// TestAttackImageNamedPipes: an image whose files that launch reads while
// it sets the container up are named pipes (which open(2) would wait on
// forever) makes launch fail with one FATAL line naming the file, or run,
// within a bound; it never hangs.
func TestAttackImageNamedPipes(t *testing.T) {
	host, _ := exec.LookPath("true")
	host, _ = filepath.EvalSymlinks(host)
	interp, _ := hostDeps(t, host)
	for _, tc := range []struct {
		name  string
		fifos []string
		args  []string // after the image
		run   bool     // launch run, not exec
		want  []string // in the FATAL line; nil: the payload runs (exit 0)
	}{
		{"passwd", []string{"/etc/passwd"}, []string{"true"}, false, []string{"/etc/passwd", "named pipe", "--no-mount passwd"}},
		{"group", []string{"/etc/group"}, []string{"true"}, false, []string{"/etc/group", "named pipe"}},
		{"executable", []string{"/bin/fifo"}, []string{"/bin/fifo"}, false, []string{"/bin/fifo", "named pipe"}},
		{"runscript", []string{"/.singularity.d/runscript"}, nil, true, []string{"/.singularity.d/runscript", "named pipe"}},
		// The kernel refuses a named pipe as an interpreter (EACCES).
		{"ELF interpreter", []string{interp}, []string{"/bin/dyn"}, false, []string{"/bin/dyn"}},
		// Sourced by the image's /bin/sh only when it is a regular file.
		{"environment script", []string{"/.singularity.d/env/90-fifo.sh"}, []string{"true"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := squashImage(t, hostileTree(t, tc.fifos...))
			verb := "exec"
			if tc.run {
				verb = "run"
			}
			r := startBackground(t, nil, append([]string{verb, img}, tc.args...)...).wait(t, 20*time.Second, tc.name)
			if tc.want == nil {
				wantOK(t, r)
				return
			}
			wantFatal(t, r, tc.want...)
		})
	}
}

// TestAttackImageLibraryPipe: a library the payload needs is a named pipe.
// The stage does not read it ahead; the payload's dynamic loader then waits
// on it, as it would outside a container, and a SIGTERM to the launcher
// reaches it: 143, and nothing is left.
func TestAttackImageLibraryPipe(t *testing.T) {
	host, _ := exec.LookPath("true")
	host, _ = filepath.EvalSymlinks(host)
	_, libc := hostDeps(t, host)
	img := squashImage(t, hostileTree(t, libc))
	s := startBackground(t, nil, "exec", img, "/bin/dyn")
	procs := s.waitFor(t, "/bin/dyn", 20*time.Second)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if r := s.wait(t, 10*time.Second, "SIGTERM"); r.Code != 143 {
		t.Errorf("exit status %d after SIGTERM, want 143; stderr %q", r.Code, r.Stderr)
	}
	waitGone(t, procs, 3*time.Second, "SIGTERM")
}

// TestAttackImageHugePasswd: an image's /etc/passwd (or /etc/group) that is
// a sparse file of a gigabyte (a few kilobytes in the image; the audit's
// 6 GiB one got launch OOM-killed, reading it whole) is refused before
// anything of it is read: one FATAL line naming it and its size.
func TestAttackImageHugePasswd(t *testing.T) {
	for _, name := range []string{"/etc/passwd", "/etc/group"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			tree := busyboxTree(t)
			if err := os.Truncate(filepath.Join(tree, name), 1<<30); err != nil {
				t.Fatal(err)
			}
			img := squashImage(t, tree)
			r := startBackground(t, nil, "exec", img, "true").wait(t, 20*time.Second, name)
			wantFatal(t, r, name, "1.0 GiB", "larger than")
		})
	}
}

// TestAttackImageSetupSignals: while the stage waits in its set-up (here on
// a FUSE server that never answers; before, on any named pipe of the
// image), a terminating signal to the launcher ends it at once with 128+N,
// and a SIGKILL of the launcher ends the stage too: within a few seconds no
// stage and no FUSE server is left. With and without the constructor's
// start (LAUNCH_PREINIT=0: a re-executed stage).
func TestAttackImageSetupSignals(t *testing.T) {
	img := busyboxImage(t, nil)
	conf, server := silentServerConf(t)
	for _, pre := range []string{"", "LAUNCH_PREINIT=0"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL} {
			name := unix.SignalName(sig)
			if pre != "" {
				name += "/no-preinit"
			}
			t.Run(name, func(t *testing.T) {
				env := []string{conf}
				if pre != "" {
					env = append(env, pre)
				}
				s := startBackground(t, env, "exec", img, "true")
				procs := s.waitFor(t, server, 20*time.Second)
				time.Sleep(100 * time.Millisecond) // the stage reaches the image's first read
				_ = s.cmd.Process.Signal(sig)
				r := s.wait(t, 10*time.Second, name+" during set-up")
				if r.Code != 128+int(sig) {
					t.Errorf("exit status %d, want %d; stderr %q", r.Code, 128+int(sig), r.Stderr)
				}
				if sig != syscall.SIGKILL && r.Stderr != "" {
					t.Errorf("stderr %q, want nothing", r.Stderr)
				}
				waitGone(t, procs, 3*time.Second, name+" during set-up")
			})
		}
	}
}

// TestAttackImageLauncherKilledWhileRunning: a SIGKILL of the launcher
// while the payload runs leaves no stage, FUSE server or payload behind
// (checked through /proc within a few seconds).
func TestAttackImageLauncherKilledWhileRunning(t *testing.T) {
	img := busyboxImage(t, nil)
	s := startBackground(t, nil, "exec", img, "sleep", "3003")
	procs := s.waitFor(t, "sleep 3003", 20*time.Second)
	_ = s.cmd.Process.Kill()
	s.wait(t, 10*time.Second, "SIGKILL")
	waitGone(t, procs, 3*time.Second, "SIGKILL of the launcher while the payload runs")
}
