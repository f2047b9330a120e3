package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Attacks of a payload on the processes launch runs beside it, and of a
// caller's process state (signals, descriptors) that launch must pass on
// as it found it: issue 14, items 5, 8, 9 and 10.

// attackImage is a busybox image with testdata/attack_proc.c, built static
// with the host's C compiler, as /bin/attack_proc.
func attackImage(t *testing.T) string {
	t.Helper()
	return busyboxImage(t, map[string]string{"bin/attack_proc": staticProgram(t, "attack_proc")})
}

// staticProgram builds testdata/NAME.c static with the host's C compiler
// and returns the binary (the test is skipped without a compiler).
func staticProgram(t *testing.T, name string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) to build the attack program")
	}
	bin := filepath.Join(t.TempDir(), name)
	src := "testdata/" + name + ".c"
	if out, err := exec.Command(cc, "-static", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("cc -static %s: %v\n%s", src, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestAttackProcPtrace: the payload tries to ptrace every thread of the
// stage, of the stage's parent and of the FUSE servers, and to open their
// /proc/PID/mem, task/TID/mem, environ and root. Every attempt must be
// refused: the payload runs without capabilities, and these processes hold
// some in the container's user namespace (or live outside it). The FUSE
// servers of a user other than root hold none of the stage's (mount,
// DAC override).
func TestAttackProcPtrace(t *testing.T) {
	img := attackImage(t)
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		servers []string // FUSE servers that must be attacked
		warm    bool     // run twice: the second joins the first's container (warmroot_test.go)
	}{
		{"default", nil, nil, []string{"launch-squashfs"}, false},
		{"re-executed stage", []string{"LAUNCH_PREINIT=0"}, nil, []string{"launch-squashfs"}, false},
		{"--ipc", nil, []string{"--ipc"}, []string{"launch-squashfs"}, false},
		{"--writable-tmpfs", nil, []string{"--writable-tmpfs"}, []string{"launch-squashfs", "fuse-overlayfs"}, false},
		// The joined launch's stage is the constructor's C process in the
		// holder's namespaces, with no FUSE server below it.
		{"warm container", []string{"LAUNCH_LINGER=2s"}, []string{"-v"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "--writable-tmpfs" && isRoot() {
				tc.servers = tc.servers[:1] // root gets kernel overlayfs
			}
			args := append(append([]string{"exec"}, tc.args...), img, "/bin/attack_proc")
			if tc.warm {
				args = append(tc.args, "exec", img, "/bin/attack_proc")
				first := launchWith(t, runOpts{Env: tc.env}, args...)
				wantOK(t, first)
				holder := holderProcs(t, warmHolder(t, launchWith(t, runOpts{Env: tc.env}, "-v", "exec", img, "true")))
				defer waitGone(t, holder, 6*time.Second, "the warm holder after its 2s window")
			}
			r := launchWith(t, runOpts{Env: tc.env}, args...)
			wantOK(t, r)
			if tc.warm {
				wantJoined(t, r.Stderr, "the attack")
			}
			found := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) > 0 && f[0] == "BREACH":
					t.Errorf("the payload could %s", line)
				case len(f) == 5 && f[0] == "target":
					found[f[1]] = true
					if f[1] == "stage" && f[3] == "1" && !tc.warm { // a joined launch's stage is C, one thread
						t.Errorf("stage has one thread: its other threads were not tried (%s)", line)
					}
					caps, err := strconv.ParseUint(f[4], 16, 64)
					const stageCaps = 1<<1 | 1<<8 | 1<<12 | 1<<21 // DAC_OVERRIDE, SETPCAP, NET_ADMIN, SYS_ADMIN
					if f[1] != "stage" && f[1] != "stage-parent" && !isRoot() && (err != nil || caps&stageCaps != 0) {
						t.Errorf("FUSE server holds capabilities %s (%v): %s", f[4], err, line)
					}
				}
			}
			for _, want := range append([]string{"stage", "stage-parent"}, tc.servers...) {
				if !found[want] {
					t.Errorf("the attack found no %s; output:\n%s", want, r.Stdout)
				}
			}
		})
	}
}

// TestAttackProcIgnoredSignals: signals the caller ignores (nohup; `cmd &`
// in a script ignores INT and QUIT; `trap "" TERM`) stay ignored for the
// payload, and neither the stage nor the launcher acts on them: the payload
// sends them to itself, the stage and the launcher, and must live on.
func TestAttackProcIgnoredSignals(t *testing.T) {
	img := busyboxImage(t, nil)
	type tcase struct {
		name    string
		wrapper []string // the caller: runs launch with the signals ignored
		sigs    string
		env     []string
		args    []string
	}
	ignoring := func(sigs string) []string {
		return []string{"sh", "-c", `trap "" ` + sigs + `; exec "$0" "$@"`}
	}
	cases := []tcase{
		{"HUP", ignoring("HUP"), "HUP", nil, nil},
		{"HUP re-executed stage", ignoring("HUP"), "HUP", []string{"LAUNCH_PREINIT=0"}, nil},
		{"HUP --pid", ignoring("HUP"), "HUP", nil, []string{"--pid"}},
		{"TERM", ignoring("TERM"), "TERM", nil, nil},
		{"TERM re-executed stage", ignoring("TERM"), "TERM", []string{"LAUNCH_PREINIT=0"}, nil},
		{"INT QUIT", ignoring("INT QUIT"), "INT QUIT", nil, nil},
		{"PIPE USR1", ignoring("PIPE USR1"), "PIPE USR1", nil, nil},
	}
	if nohup, err := exec.LookPath("nohup"); err == nil {
		cases = append(cases, tcase{"nohup", []string{nohup}, "HUP", nil, nil})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// What a program it starts inherits; then the signals to itself,
			// to the stage and (when it can see it) the launcher; then it
			// must still be there to say so.
			script := `grep ^SigIgn: /proc/self/status
for s in ` + tc.sigs + `; do kill -$s $$; done
st=$PPID; lp=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$st/status)
for s in ` + tc.sigs + `; do kill -$s $st; [ "${lp:-0}" -gt 1 ] && kill -$s $lp; done
sleep 0.3; echo alive`
			args := append(append([]string{"exec"}, tc.args...), img, "sh", "-c", script)
			r := runCmd(t, runOpts{Env: tc.env}, tc.wrapper, args...)
			lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
			if r.Code != 0 || len(lines) != 2 || lines[1] != "alive" {
				t.Fatalf("with %s ignored by the caller: exit status %d, stdout %q, want 0 and alive; stderr: %s",
					tc.sigs, r.Code, r.Stdout, r.Stderr)
			}
			mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(lines[0], "SigIgn:")), 16, 64)
			if err != nil {
				t.Fatalf("payload's %q: %v", lines[0], err)
			}
			for _, name := range strings.Fields(tc.sigs) {
				if s := unix.SignalNum("SIG" + name); mask&(1<<(s-1)) == 0 {
					t.Errorf("SIG%s is not ignored for the payload's children (%s)", name, lines[0])
				}
			}
		})
	}
}

// TestAttackProcClosedStdio: a caller that starts launch with standard
// input, output or error closed still gets the payload's exit status (the
// status socket must not land on fd 0 or 1, where the payload writes).
func TestAttackProcClosedStdio(t *testing.T) {
	img := busyboxImage(t, nil)
	for _, closed := range []string{"<&- >&-", "<&-", ">&-", "2>&-", "<&- >&- 2>&-"} {
		for _, path := range []struct {
			name string
			env  []string
			args []string
		}{
			{"default", nil, nil},
			{"re-executed stage", []string{"LAUNCH_PREINIT=0"}, nil},
			{"--pid", nil, []string{"--pid"}},
		} {
			for _, run := range []struct {
				script string
				code   int
			}{{"exit 7", 7}, {"echo hello", 0}, {"echo oops >&2; exit 3", 3}} {
				t.Run(fmt.Sprintf("%s/%s/%s", closed, path.name, run.script), func(t *testing.T) {
					wrapper := []string{"sh", "-c", `exec "$0" "$@" ` + closed}
					args := append(append([]string{"exec"}, path.args...), img, "sh", "-c", run.script)
					r := runCmd(t, runOpts{Env: path.env}, wrapper, args...)
					if r.Code != run.code {
						t.Errorf("exit status %d, want %d; stderr: %s", r.Code, run.code, r.Stderr)
					}
				})
			}
		}
	}
}

// TestAttackProcInheritedFDs: descriptors the caller leaves open (here
// pipes at 5 and 7) reach the payload, as with Apptainer, but neither the
// FUSE server nor the stage keeps them: a reader of such a pipe must not
// wait for a server (a sharing holder's lingers after its payload).
func TestAttackProcInheritedFDs(t *testing.T) {
	img := busyboxImage(t, nil)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"default", nil},
		{"re-executed stage", []string{"LAUNCH_PREINIT=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pipes []string // "pipe:[INODE]" of each pipe passed on
			var extra []*os.File
			for _, fd := range []int{5, 7} {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				var st syscall.Stat_t
				if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
					t.Fatal(err)
				}
				pipes = append(pipes, fmt.Sprintf("pipe:[%d]", st.Ino))
				for len(extra) < fd-3 {
					extra = append(extra, nil)
				}
				extra = append(extra, w)
			}
			cmd := exec.Command(launchBin(t), "exec", img, "sh", "-c",
				`for f in 5 7; do [ -e /proc/self/fd/$f ] && echo has-$f; done; echo ready $$; exec sleep 30`)
			cmd.Env = append(os.Environ(), tc.env...)
			cmd.ExtraFiles = extra
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := false
			defer func() {
				if !waited {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}()
			sc := bufio.NewScanner(out)
			var lines []string
			payload := "?"
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "ready" {
					payload = f[1]
					break
				}
				lines = append(lines, sc.Text())
			}
			if got := strings.Join(lines, " "); got != "has-5 has-7" {
				t.Errorf("the payload has %q of the caller's descriptors 5 and 7, want both", got)
			}
			var stage, server bool
			for pid, cl := range descendantsOf(cmd.Process.Pid) {
				if strconv.Itoa(pid) == payload {
					continue
				}
				stage = stage || strings.HasPrefix(cl, launchBin(t)) || strings.Contains(cl, "__launch_stage")
				server = server || isImageServer(cl)
				fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
				for _, fd := range fds {
					link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
					for i, p := range pipes {
						if link == p {
							t.Errorf("%d (%s) holds the caller's descriptor %d as its %s", pid, cl, []int{5, 7}[i], fd.Name())
						}
					}
				}
			}
			if !stage || !server {
				t.Fatalf("found stage %v, FUSE server %v below the launcher: %v", stage, server, descendantsOf(cmd.Process.Pid))
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			waited = true
			if code := exitStatus(cmd.Wait()); code != 128+int(syscall.SIGTERM) {
				t.Errorf("after SIGTERM: exit status %d, want %d", code, 128+int(syscall.SIGTERM))
			}
		})
	}
}
