package e2e

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalToWholeGroup sends each signal to the launcher's whole process
// group at once, as Slurm does to every process of a job step (scancel,
// scancel -s, sbatch --signal) and a terminal to its foreground group. The
// FUSE server must not die of it: the payload's handler still reads from the
// image (a checkpoint-on-signal handler would), and exits 0.
func TestSignalToWholeGroup(t *testing.T) {
	img := busyboxImage(t, map[string]string{"etc/marker": "from-the-image\n"})
	// With --writable-tmpfs an unprivileged user's image is served through
	// fuse-overlayfs too, which must survive the signal as squashfuse does.
	for _, layer := range [][]string{nil, {"--writable-tmpfs"}} {
		for _, c := range []struct {
			sig  syscall.Signal
			name string
		}{{syscall.SIGTERM, "TERM"}, {syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}, {syscall.SIGHUP, "HUP"}, {syscall.SIGINT, "INT"}, {syscall.SIGALRM, "ALRM"}} {
			sig, name := c.sig, c.name
			layer := layer
			t.Run(strings.Join(append([]string{name}, layer...), " "), func(t *testing.T) {
				// The handler waits a moment so that a FUSE server dying of
				// the same signal would be gone, then runs a program from the
				// image.
				script := `trap 'sleep 0.3; cat /etc/marker; exit 0' ` + name + `; echo ready; while :; do sleep 0.05; done`
				args := append(append([]string{"exec"}, layer...), img, "sh", "-c", script)
				cmd := exec.Command(launchBin(t), args...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				rd := bufio.NewReader(out)
				if l, _ := rd.ReadString('\n'); l != "ready\n" {
					_ = cmd.Process.Kill()
					t.Fatalf("payload did not start: %q %s", l, stderr.String())
				}
				if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				var rest bytes.Buffer
				go func() { _, _ = rest.ReadFrom(rd); done <- cmd.Wait() }()
				select {
				case err = <-done:
				case <-time.After(30 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					t.Fatalf("launch did not end after %v to its process group", sig)
				}
				if err != nil || rest.String() != "from-the-image\n" {
					t.Errorf("after %v to the process group: %v, stdout %q, stderr %q; want exit 0 and the image's file",
						sig, err, rest.String(), stderr.String())
				}
			})
		}
	}
}
