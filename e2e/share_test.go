package e2e

// Launches of one image by one user at the same time share one squashfuse
// mount (internal/share): the first serves the others and outlives its own
// payload until the last of them is done, without holding up its launcher.

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/launch-hpc/launch/internal/share"
)

// running is one launch started in the background.
type running struct {
	cmd    *exec.Cmd
	lines  chan string // the payload's standard output, line by line
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when the launcher has exited
	code   int
}

// startLaunch starts launch with args and env and waits for the payload's
// first line of output, which must be want.
func startLaunch(t *testing.T, env []string, want string, args ...string) *running {
	t.Helper()
	r := spawnLaunch(t, env, args...)
	if got := r.next(t); got != want {
		t.Fatalf("launch %v printed %q first, want %q; stderr: %s", args, got, want, r.errText())
	}
	return r
}

// spawnLaunch starts launch with args, its output read line by line.
func spawnLaunch(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	r := &running{lines: make(chan string, 16), done: make(chan struct{})}
	r.cmd = exec.Command(launchBin(t), args...)
	r.cmd.Env = append(os.Environ(), env...)
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reads sync.WaitGroup
	reads.Add(2)
	go func() {
		defer reads.Done()
		s := bufio.NewScanner(out)
		for s.Scan() {
			r.lines <- s.Text()
		}
		close(r.lines)
	}()
	go func() {
		defer reads.Done()
		b, _ := io.ReadAll(errp)
		r.mu.Lock()
		r.stderr.Write(b)
		r.mu.Unlock()
	}()
	go func() {
		reads.Wait()
		err := r.cmd.Wait()
		r.code = exitStatus(err)
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// next returns the payload's next line of output.
func (r *running) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			<-r.done
			return "(exit " + strconv.Itoa(r.code) + ")"
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("no output from launch after 30s; stderr so far: %s", r.errText())
	}
	return ""
}

// wait waits for the launcher's exit and returns its status.
func (r *running) wait(t *testing.T, what string) int {
	t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: launch did not exit within 30s", what)
	}
	return 0
}

func (r *running) errText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// needSharing skips the test on a kernel that cannot share mounts
// between launches (cloning a detached mount needs Linux 6.15).
func needSharing(t *testing.T) {
	t.Helper()
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	if !share.KernelSupports(string(b)) {
		t.Skipf("Linux %s cannot share an image mount between launches (it needs 6.15 or later)", b)
	}
}

// fuseServers counts the squashfuse processes among procs.
func fuseServers(procs map[int]string) int {
	n := 0
	for _, cl := range procs {
		if isImageServer(cl) {
			n++
		}
	}
	return n
}

// stageOf returns the container stage of a launcher: its child running
// launch itself (not squashfuse, not the payload).
func stageOf(t *testing.T, launcher int) int {
	t.Helper()
	for pid, cl := range descendantsOf(launcher) {
		if procParent(pid) == launcher && strings.Contains(cl, "exec ") && !isImageServer(cl) {
			return pid
		}
	}
	t.Fatalf("no container stage under launcher %d: %v", launcher, descendantsOf(launcher))
	return 0
}

// TestShareMount: a second launch of the same image uses the first one's
// mount (no squashfuse of its own); the first one's launcher exits as soon
// as its payload is done while the second still runs and can still read
// the image; once the second is done, nothing is left.
func TestShareMount(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, map[string]string{"etc/share-mark": "from the image\n"})
	dir := t.TempDir()
	goFile, firstGo := filepath.Join(dir, "go"), filepath.Join(dir, "first-go")
	const waitFor = `while [ ! -e "$1" ]; do sleep 0.05; done`

	first := startLaunch(t, nil, "up", "-d", "exec", img, "sh", "-c", "echo up; "+waitFor, "sh", firstGo)
	second := startLaunch(t, nil, "in", "-d", "exec", img, "sh", "-c",
		`echo in; while [ ! -e "$1" ]; do sleep 0.05; done; cat /etc/share-mark`, "sh", goFile)
	procs := descendantsOf(first.cmd.Process.Pid)
	if n := fuseServers(procs); n != 1 {
		t.Errorf("first launch: %d squashfuse processes, want 1: %v", n, procs)
	}
	seconds := descendantsOf(second.cmd.Process.Pid)
	if n := fuseServers(seconds); n != 0 {
		t.Errorf("second launch: %d squashfuse processes, want 0 (it shares the first one's): %v", n, seconds)
	}
	for pid, cl := range seconds {
		procs[pid] = cl
	}

	if err := os.WriteFile(firstGo, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := first.wait(t, "the first launch, whose payload is done while the second still uses its mount"); code != 0 {
		t.Errorf("first launch exited %d; stderr: %s", code, first.errText())
	}
	select {
	case <-second.done:
		t.Fatalf("the second launch ended before it was let go: exit %d, stderr: %s", second.code, second.errText())
	default:
	}
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := second.next(t); got != "from the image" {
		t.Errorf("second launch read %q from the image after the first one's payload ended, want %q; stderr: %s", got, "from the image", second.errText())
	}
	if code := second.wait(t, "the second launch"); code != 0 {
		t.Errorf("second launch exited %d; stderr: %s", code, second.errText())
	}
	if e := first.errText(); !strings.Contains(e, "serving the image mount") {
		t.Errorf("first launch's -d output does not say it serves its mount: %s", e)
	}
	if e := second.errText(); !strings.Contains(e, "using the image mount of pid") {
		t.Errorf("second launch's -d output does not say whose mount it uses: %s", e)
	}
	waitGone(t, procs, 3*time.Second, "both launches")
	if m, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(m, []byte("squashfuse")) {
		t.Errorf("a squashfuse mount is visible on the host")
	}
}

// TestShareOptOut: --no-share, LAUNCH_NO_SHARE and images.share_mounts =
// false each give a launch its own mount.
func TestShareOptOut(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, nil)
	first := startLaunch(t, nil, "up", "exec", img, "sh", "-c", "echo up; sleep 30")
	procs := descendantsOf(first.cmd.Process.Pid)
	cases := []struct {
		name string
		env  []string
		args []string
	}{
		{"--no-share", nil, []string{"exec", "--no-share"}},
		{"LAUNCH_NO_SHARE", []string{"LAUNCH_NO_SHARE=1"}, []string{"exec"}},
		{"share_mounts=false", withConf(t, "[images]\nshare_mounts = false\n"), []string{"exec"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{}, c.args...), img, "sh", "-c", "echo in; exec sleep 30")
			r := startLaunch(t, c.env, "in", args...)
			own := descendantsOf(r.cmd.Process.Pid)
			if n := fuseServers(own); n != 1 {
				t.Errorf("%d squashfuse processes under the launch, want its own one: %v", n, own)
			}
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			if code := r.wait(t, c.name); code != 128+15 {
				t.Errorf("exit %d after SIGTERM, want %d; stderr: %s", code, 128+15, r.errText())
			}
			waitGone(t, own, 3*time.Second, c.name)
		})
	}
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	first.wait(t, "the first launch")
	waitGone(t, procs, 3*time.Second, "the first launch")
}

// TestShareHolderKilled: when the launch that serves the mount is killed
// outright (SIGKILL to its stage, as an OOM kill would), the image goes
// away under the launch that shares it; that launch says why, and still
// ends cleanly with nothing left.
func TestShareHolderKilled(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, map[string]string{"etc/share-mark": "from the image\n"})
	goFile := filepath.Join(t.TempDir(), "go")
	first := startLaunch(t, nil, "up", "exec", img, "sh", "-c", "echo up; exec sleep 30")
	second := startLaunch(t, nil, "in", "exec", img, "sh", "-c",
		`echo in; while [ ! -e "$1" ]; do sleep 0.05; done; cat /etc/share-mark; echo "cat: $?"`, "sh", goFile)
	procs := descendantsOf(first.cmd.Process.Pid)
	for pid, cl := range descendantsOf(second.cmd.Process.Pid) {
		procs[pid] = cl
	}
	if err := syscall.Kill(stageOf(t, first.cmd.Process.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t, "the killed first launch")
	time.Sleep(700 * time.Millisecond) // past the second launch's warning delay
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := second.next(t); got == "from the image" || !strings.HasPrefix(got, "cat: ") || got == "cat: 0" {
		t.Errorf("second launch after the holder was killed printed %q, want cat's failure status", got)
	}
	second.wait(t, "the second launch")
	if e := second.errText(); !strings.Contains(e, "which shared its image mount with this one, was killed") {
		t.Errorf("second launch does not say its image went away with the other launch: %s", e)
	}
	waitGone(t, procs, 3*time.Second, "both launches")
}
