package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPreinit: how the container's process is started. By default
// internal/preinit forks before the Go runtime starts: the container is built
// by the `launch exec` process itself (its command line says exec), whose
// parent — the launcher the caller sees — stays in the caller's user
// namespace. With LAUNCH_PREINIT=0 launch re-executes itself as
// `launch __launch_stage`. Both ways keep the user's identity inside, pass a
// SIGTERM sent to the launcher on to the payload and exit with its status.
func TestPreinit(t *testing.T) {
	img := busyboxImage(t, nil)
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	// The payload prints the stage's command line (on one line), the
	// stage's and the launcher's pids and its uid, then waits to be
	// signalled.
	script := `st=$PPID
lp=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$st/status)
tr '\0\n' '  ' </proc/$st/cmdline; echo
echo $st $lp
id -u
exec sleep 60`
	for _, tc := range []struct {
		name      string
		env       []string
		pre       []string // arguments before "exec"
		wantStage string   // in the stage's command line
	}{
		{"default", nil, nil, " exec "},
		{"global flags first", nil, []string{"-q", "--verbose"}, " exec "},
		{"off", []string{"LAUNCH_PREINIT=0"}, nil, " __launch_stage "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.pre...), "exec", img, "sh", "-c", script)
			cmd := exec.Command(launchBin(t), args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			sc := bufio.NewScanner(out)
			var lines []string
			for len(lines) < 3 && sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != 3 {
				t.Fatalf("payload printed %q, want 3 lines", lines)
			}
			if !strings.Contains(lines[0], tc.wantStage) {
				t.Errorf("stage command line %q does not contain %q", lines[0], tc.wantStage)
			}
			pids := strings.Fields(lines[1])
			if len(pids) != 2 || pids[1] != strconv.Itoa(cmd.Process.Pid) {
				t.Fatalf("stage and launcher pids %q: the launcher should be %d", lines[1], cmd.Process.Pid)
			}
			if ns, err := os.Readlink("/proc/" + pids[1] + "/ns/user"); err != nil || ns != self {
				t.Errorf("launcher's user namespace %s (%v), want the caller's %s", ns, err, self)
			}
			if ns, err := os.Readlink("/proc/" + pids[0] + "/ns/user"); err != nil || ns == self {
				t.Errorf("stage's user namespace %s (%v), want its own", ns, err)
			}
			if lines[2] != strconv.Itoa(os.Getuid()) {
				t.Errorf("uid inside %s, want %d", lines[2], os.Getuid())
			}
			stagePid, _ := strconv.Atoi(pids[0])
			stageCmd, err := os.ReadFile("/proc/" + pids[0] + "/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			if exitStatus(err) != 128+int(syscall.SIGTERM) {
				t.Errorf("after SIGTERM to the launcher: %v, want exit status %d", err, 128+int(syscall.SIGTERM))
			}
			waitGone(t, map[int]string{stagePid: strings.ReplaceAll(string(stageCmd), "\x00", " ")}, 2*time.Second, "the stage after SIGTERM")
		})
	}
}

// TestPreinitCallerIgnoresSIGCHLD: a caller that ignores SIGCHLD (Perl's
// $SIG{CHLD}='IGNORE' before exec, kept across it) still gets the payload's
// exit status, also on the paths where the launcher learns it by reaping
// its child (--pid re-executes the stage).
func TestPreinitCallerIgnoresSIGCHLD(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl not installed")
	}
	img := busyboxImage(t, nil)
	for _, args := range [][]string{
		{"exec", img, "sh", "-c", "exit 3"},
		{"exec", "--pid", img, "sh", "-c", "exit 3"},
	} {
		r := launchVia(t, []string{perl, "-e", `$SIG{CHLD} = "IGNORE"; exec @ARGV or die`}, args...)
		if r.Code != 3 {
			t.Errorf("launch %v with SIGCHLD ignored: exit status %d, want 3; stderr: %s", args, r.Code, r.Stderr)
		}
	}
}
