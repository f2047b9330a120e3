package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// squashImage packs tree into a bare SquashFS file with mksquashfs.
func squashImage(t testing.TB, tree string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.sqfs")
	cmd := exec.Command("mksquashfs", tree, out, "-noappend", "-all-root", "-quiet", "-no-progress")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	return out
}

// busyboxImage is a squashfs of the busybox tree with extra files added.
func busyboxImage(t testing.TB, extra map[string]string) string {
	t.Helper()
	tree := busyboxTree(t)
	for name, content := range extra {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return squashImage(t, tree)
}

func TestExecIdentityAndDefaultMounts(t *testing.T) {
	img := busyboxImage(t, nil)
	work := t.TempDir()
	home, _ := os.UserHomeDir()
	r := launchWith(t, runOpts{Dir: work}, "exec", img, "sh", "-c",
		`id -u; id -g; pwd; echo "$HOME"; echo written > out.txt; test -d /proc/self && test -c /dev/null && test -d /sys/kernel && echo mounts-ok; grep -c "^[^:]*:x:$(id -u):" /etc/passwd`)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	want := []string{strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid()), work, home, "mounts-ok", "1"}
	if len(lines) != len(want) {
		t.Fatalf("got %q, want %q", lines, want)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i, lines[i], want[i])
		}
	}
	fi, err := os.Stat(filepath.Join(work, "out.txt"))
	if err != nil {
		t.Fatalf("file written inside is not on the host: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("file written inside owned by %d:%d, want %d:%d", st.Uid, st.Gid, os.Getuid(), os.Getgid())
	}
}

func TestExecImageIsReadOnly(t *testing.T) {
	img := busyboxImage(t, nil)
	// Besides the image itself: the tmpfs launch puts under directories where
	// it adds mount points (/, /etc, /home here), and the generated
	// /etc/passwd and /etc/group, whether bound or written into such a tmpfs.
	r := launch(t, "exec", img, "sh", "-c", `touch /bin/newfile 2>&1; touch /etc/newfile 2>&1; mkdir /newdir 2>&1;
		touch /home/newfile 2>&1; (echo x >> /etc/passwd) 2>&1; (echo x >> /etc/group) 2>&1; echo done`)
	wantOK(t, r)
	if strings.Count(r.Stdout, "Read-only file system") != 6 {
		t.Errorf("writes into the image should fail read-only, got %q", r.Stdout)
	}
}

func TestExecFromSIFAndSandbox(t *testing.T) {
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "marker"), []byte("in-the-image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{buildSIF(t, tree), tree} {
		r := launch(t, "exec", img, "cat", "/etc/marker")
		wantOK(t, r)
		if r.Stdout != "in-the-image\n" {
			t.Errorf("%s: got %q", img, r.Stdout)
		}
	}
}

func TestExecExitStatus(t *testing.T) {
	img := busyboxImage(t, nil)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"zero", []string{"true"}, 0},
		{"status", []string{"sh", "-c", "exit 42"}, 42},
		{"signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"kill", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := launch(t, append([]string{"exec", img}, c.args...)...)
			if r.Code != c.code {
				t.Errorf("exit status %d, want %d (stderr %q)", r.Code, c.code, r.Stderr)
			}
		})
	}
}

func TestExecStdioPassThrough(t *testing.T) {
	img := busyboxImage(t, nil)
	r := launchWith(t, runOpts{Stdin: "line one\nline two\n"}, "exec", img, "sh", "-c", "cat; echo to-stderr >&2")
	wantOK(t, r)
	if r.Stdout != "line one\nline two\n" || r.Stderr != "to-stderr\n" {
		t.Errorf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestRunRunscriptAndEnvScripts(t *testing.T) {
	img := busyboxImage(t, map[string]string{
		".singularity.d/runscript":                    "#!/bin/sh\necho \"runscript: $* FOO=$FOO\"\n",
		".singularity.d/env/90-environment.sh":        "#!/bin/sh\nexport FOO=from-image\n",
		".singularity.d/env/10-docker2singularity.sh": "#!/bin/sh\nexport PATH=\"/opt/x:/bin\"\n",
	})
	r := launch(t, "run", img, "a", "b c")
	wantOK(t, r)
	if r.Stdout != "runscript: a b c FOO=from-image\n" {
		t.Errorf("run: got %q", r.Stdout)
	}
	r = launch(t, "exec", img, "sh", "-c", `echo "$PATH"`)
	wantOK(t, r)
	if r.Stdout != "/opt/x:/bin\n" {
		t.Errorf("image PATH: got %q", r.Stdout)
	}
	r = launch(t, "exec", img, "no-such-command")
	wantFatal(t, r, "no-such-command")
}

func TestShellRunsShell(t *testing.T) {
	img := busyboxImage(t, nil)
	r := launchWith(t, runOpts{Stdin: "echo shell-ran $((6*7))\nexit 3\n"}, "shell", img)
	if r.Code != 3 || r.Stdout != "shell-ran 42\n" {
		t.Errorf("shell: code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestExecPIDNamespace(t *testing.T) {
	img := busyboxImage(t, nil)
	r := launch(t, "exec", "--pid", img, "sh", "-c", "ls /proc | grep -c '^[0-9]'")
	wantOK(t, r)
	n, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil || n > 5 {
		t.Errorf("a new PID namespace should show a handful of processes, got %q", r.Stdout)
	}
}

func TestExecMissingCommandNamed(t *testing.T) {
	img := busyboxImage(t, nil)
	wantFatal(t, launch(t, "exec", img, "/opt/nothing-here"), "/opt/nothing-here")
	wantFatal(t, launch(t, "exec", img, "nothing-here"), "nothing-here", "not found")
}

func TestExecBadImages(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("just some text, not an image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sif := buildSIF(t, busyboxTree(t))
	data, err := os.ReadFile(sif)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "truncated.sif")
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, image string
		want        []string
	}{
		{"missing", filepath.Join(dir, "nope.sif"), []string{"nope.sif", "does not exist"}},
		{"text", text, []string{"notes.txt", "not a SIF"}},
		{"truncated", trunc, []string{"truncated.sif"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFatal(t, launch(t, "exec", c.image, "true"), c.want...)
		})
	}
}

// TestNothingLeftBehind starts a payload that leaves a background process
// behind, ends the launcher in each way users and batch systems do, and
// checks that no payload process and no squashfuse is left.
func TestNothingLeftBehind(t *testing.T) {
	img := busyboxImage(t, nil)
	cases := []struct {
		name string
		stop func(*exec.Cmd)
		code int
	}{
		{"payload-exits", nil, 0},
		{"SIGTERM", func(c *exec.Cmd) { _ = c.Process.Signal(syscall.SIGTERM) }, 128 + 15},
		{"SIGKILL", func(c *exec.Cmd) { _ = c.Process.Kill() }, 128 + 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			script := `sleep 3001 & echo ready; `
			if c.stop != nil {
				script += `exec sleep 3002`
			}
			cmd := exec.Command(launchBin(t), "exec", img, "sh", "-c", script)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			if line != "ready\n" {
				t.Fatalf("payload did not start: %q %s", line, stderr.String())
			}
			procs := descendantsOf(cmd.Process.Pid)
			fuse := 0
			for _, cl := range procs {
				if isImageServer(cl) {
					fuse++
				}
			}
			if c.stop != nil {
				if fuse != 1 {
					t.Errorf("expected one squashfuse under the launcher, got %v", procs)
				}
				c.stop(cmd)
			}
			code := exitStatus(cmd.Wait())
			if code != c.code {
				t.Errorf("launcher exit status %d, want %d (stderr %q)", code, c.code, stderr.String())
			}
			waitGone(t, procs, 2*time.Second, c.name)
			if m, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(m, []byte("squashfuse")) {
				t.Errorf("a squashfuse mount is visible on the host")
			}
		})
	}
}

// TestSignalsReachPayload sends each forwarded signal to the launcher and
// checks the payload's trap saw it.
func TestSignalsReachPayload(t *testing.T) {
	img := busyboxImage(t, nil)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			name := strings.TrimPrefix(sigName(sig), "SIG")
			script := fmt.Sprintf(`trap 'echo got-%s; exit 7' %s; echo ready; while :; do sleep 0.05; done`, name, name)
			cmd := exec.Command(launchBin(t), "exec", img, "sh", "-c", script)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(out)
			if l, _ := rd.ReadString('\n'); l != "ready\n" {
				t.Fatalf("payload did not start: %q", l)
			}
			_ = cmd.Process.Signal(sig)
			l, _ := rd.ReadString('\n')
			err := cmd.Wait()
			if l != "got-"+name+"\n" {
				t.Errorf("payload printed %q after %v", l, sig)
			}
			if exitStatus(err) != 7 {
				t.Errorf("exit: %v, want status 7", err)
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP",
		syscall.SIGQUIT: "SIGQUIT", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2"}[s]
}

// TestPayloadHasNoPrivileges checks no_new_privs and empty capability sets,
// for root too, and that the image is mounted nosuid,nodev.
func TestPayloadHasNoPrivileges(t *testing.T) {
	img := busyboxImage(t, nil)
	r := launch(t, "exec", img, "sh", "-c", `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status; grep ' / ' /proc/self/mountinfo`)
	wantOK(t, r)
	for _, f := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if !strings.Contains(r.Stdout, f+":\t0000000000000000") {
			t.Errorf("%s not empty:\n%s", f, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "NoNewPrivs:\t1") {
		t.Errorf("no_new_privs not set:\n%s", r.Stdout)
	}
	root := r.Stdout[strings.LastIndex(r.Stdout, "NoNewPrivs"):]
	for _, opt := range []string{"nosuid", "nodev"} {
		if !strings.Contains(root, opt) {
			t.Errorf("container root not %s: %s", opt, root)
		}
	}
}

// TestExecNetNamespace: --net gives a network namespace with only the
// loopback interface, and it is up (for root and for ordinary users).
func TestExecNetNamespace(t *testing.T) {
	img := busyboxImage(t, nil)
	r := launch(t, "exec", "--net", img, "sh", "-c", `ip -o link | cut -d: -f2,3`)
	wantOK(t, r)
	got := strings.TrimSpace(r.Stdout)
	if strings.Count(got, "\n") != 0 || !strings.HasPrefix(got, "lo: <LOOPBACK,UP") {
		t.Errorf("interfaces inside --net: %q, want only lo, up", got)
	}
	// Apptainer's --net --network none is the same; other networks are CNI's.
	n := launch(t, "exec", "--net", "--network", "none", img, "sh", "-c", `ip -o link | cut -d: -f2,3`)
	if wantOK(t, n); strings.TrimSpace(n.Stdout) != got {
		t.Errorf("interfaces inside --net --network none: %q, want %q", n.Stdout, got)
	}
	wantFatal(t, launch(t, "exec", "--net", "--network", "bridge", img, "true"), `--network "bridge"`, "CNI")
	// As Apptainer, --network means nothing without --net.
	wantOK(t, launch(t, "exec", "--network", "bridge", img, "true"))
}

// waitGone fails the test unless every process of procs (pid → command
// line when recorded) is gone within d after what happened.
func waitGone(t *testing.T, procs map[int]string, d time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var left []string
		for pid, cl := range procs {
			if alive(pid, cl) {
				left = append(left, fmt.Sprintf("%d %s", pid, cl))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind after %s: %v", what, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
