package e2e

// Warm image mounts (issue 19): the holder of a shared image mount keeps it
// for its warm window (launch.conf images.linger, --linger, LAUNCH_LINGER)
// after its own launch is done, so that the next launch of the image joins
// it instead of mounting afresh; it ends after the window, on SIGTERM, when
// its squashfuse dies, and with its Slurm step.

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// suiteLinger is the warm window of every launch of the suite that does not
// ask for one: none, so that a test's launches end with it, as the other
// tests and the leak check expect. The tests here set their own.
const suiteLinger = "LAUNCH_LINGER=0s"

// setSuiteLinger sets suiteLinger in the suite's environment (TestMain),
// unless the caller set LAUNCH_LINGER.
func setSuiteLinger() {
	if os.Getenv("LAUNCH_LINGER") == "" {
		k, v, _ := strings.Cut(suiteLinger, "=")
		os.Setenv(k, v)
	}
}

// warmUsed finds the holder's pid in a launch's -v output when it joined a
// warm mount, or a warm container (warmroot_test.go).
var warmUsed = regexp.MustCompile(`(?m)^VERBOSE: (?:using the warm image mount of pid|joining the container kept by launch pid) (\d+)`)

// warmHolder returns the pid of the warm mount's holder that r used, and
// fails the test when r did not use one.
func warmHolder(t *testing.T, r result) int {
	t.Helper()
	m := warmUsed.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("the launch did not use a warm image mount; stderr:\n%s", r.Stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// holderProcs returns the holder's stage and what runs below it (its
// squashfuse), pid → command line.
func holderProcs(t *testing.T, pid int) map[int]string {
	t.Helper()
	procs := descendantsOf(pid)
	cl := procCmdline(pid)
	if cl == "" {
		t.Fatalf("the holder pid %d is gone already", pid)
	}
	procs[pid] = cl
	if n := fuseServers(procs); n != 1 {
		t.Errorf("the warm holder has %d squashfuse processes, want 1: %v", n, procs)
	}
	return procs
}

// TestWarmSecondLaunch: a launch done, the next launch of the image joins
// its mount warm (-v says so; no squashfuse of its own) and reads the
// image; a third joins too and restarts the window; once the window has
// passed with no launch, the holder and its squashfuse are gone.
func TestWarmSecondLaunch(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, map[string]string{"etc/warm-mark": "warm\n"})
	env := runOpts{Env: []string{"LAUNCH_LINGER=2s"}}
	first := launchWith(t, env, "-d", "exec", img, "true")
	wantOK(t, first)
	if !strings.Contains(first.Stderr, "serving the image mount") {
		t.Fatalf("the first launch did not serve its mount; stderr:\n%s", first.Stderr)
	}
	second := launchWith(t, env, "-v", "exec", img, "cat", "/etc/warm-mark")
	wantOK(t, second)
	if second.Stdout != "warm\n" {
		t.Errorf("the second launch read %q from the warm mount, want warm", second.Stdout)
	}
	pid := warmHolder(t, second)
	procs := holderProcs(t, pid)
	start := time.Now()
	third := launchWith(t, env, "-v", "exec", img, "cat", "/etc/warm-mark")
	wantOK(t, third)
	if got := warmHolder(t, third); got != pid {
		t.Errorf("the third launch used the warm mount of pid %d, want %d", got, pid)
	}
	// The window starts again when the third launch is done.
	time.Sleep(time.Second)
	for p, cl := range procs {
		if !alive(p, cl) {
			t.Fatalf("the holder's %d %s ended within the window after the last launch (%v)", p, cl, time.Since(start))
		}
	}
	waitGone(t, procs, 4*time.Second, "the warm window (2s) after the last launch")
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("the holder ended %v after the last launch started, before its 2s window", d)
	}
	fourth := launchWith(t, env, "-d", "exec", img, "true")
	wantOK(t, fourth)
	if !strings.Contains(fourth.Stderr, "serving the image mount") || warmUsed.MatchString(fourth.Stderr) {
		t.Errorf("after the window a launch should mount afresh; stderr:\n%s", fourth.Stderr)
	}
	endWarm(t, fourth)
}

// servedBy finds the squashfuse pid in a launch's -d output.
var servedBy = regexp.MustCompile(`on a detached mount with \S+, pid (\d+)`)

// heldBy returns the processes of the warm holder that the launch r (run
// with -d) left: its stage and squashfuse, pid → command line; none when
// they are gone.
func heldBy(r result) map[int]string {
	m := servedBy.FindStringSubmatch(r.Stderr)
	if m == nil {
		return nil
	}
	fuse, _ := strconv.Atoi(m[1])
	stage := procParent(fuse)
	if stage <= 1 || !strings.Contains(procCmdline(stage), "exec") || !isImageServer(procCmdline(fuse)) {
		return nil
	}
	return map[int]string{stage: procCmdline(stage), fuse: procCmdline(fuse)}
}

// endWarm ends the warm holder that the launch r (run with -d) left, with
// SIGTERM, which ends an idle holder at once, and waits for it.
func endWarm(t *testing.T, r result) {
	t.Helper()
	procs := heldBy(r)
	for pid, cl := range procs {
		if !isImageServer(cl) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	waitGone(t, procs, 3*time.Second, "SIGTERM to an idle warm holder")
}

// TestWarmChangedImage: an image file changed after a launch (a new
// modification time; a new file renamed over it) is not served from the
// warm mount of the old one.
func TestWarmChangedImage(t *testing.T) {
	needSharing(t)
	env := runOpts{Env: []string{"LAUNCH_LINGER=20s"}}
	dir := t.TempDir()
	img := filepath.Join(dir, "image.sqfs")
	if err := os.Rename(busyboxImage(t, map[string]string{"etc/warm-mark": "old\n"}), img); err != nil {
		t.Fatal(err)
	}
	first := launchWith(t, env, "-d", "exec", img, "cat", "/etc/warm-mark")
	wantOK(t, first)
	defer endWarm(t, first)

	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(img, later, later); err != nil {
		t.Fatal(err)
	}
	touched := launchWith(t, env, "-d", "exec", img, "true")
	wantOK(t, touched)
	defer endWarm(t, touched)
	if warmUsed.MatchString(touched.Stderr) || !strings.Contains(touched.Stderr, "serving the image mount") {
		t.Errorf("a launch of the image with a new modification time used an old mount; stderr:\n%s", touched.Stderr)
	}

	if err := os.Rename(busyboxImage(t, map[string]string{"etc/warm-mark": "new\n"}), img); err != nil {
		t.Fatal(err)
	}
	replaced := launchWith(t, env, "-d", "exec", img, "cat", "/etc/warm-mark")
	wantOK(t, replaced)
	defer endWarm(t, replaced)
	if replaced.Stdout != "new\n" || warmUsed.MatchString(replaced.Stderr) {
		t.Errorf("a launch of the replaced image read %q (want new); stderr:\n%s", replaced.Stdout, replaced.Stderr)
	}
}

// TestWarmOff: --no-share, --linger 0s, LAUNCH_LINGER=0 and launch.conf
// images.linger = "0s" each leave no warm mount: the launch's holder ends
// with it, and the next launch mounts the image itself. Bad values are one
// FATAL line naming the option or the key.
func TestWarmOff(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, nil)
	cases := []struct {
		name string
		env  []string
		args []string
	}{
		{"--no-share", []string{"LAUNCH_LINGER=20s"}, []string{"--no-share"}},
		{"--linger 0s", []string{"LAUNCH_LINGER=20s"}, []string{"--linger", "0s"}},
		{"LAUNCH_LINGER=0", []string{"LAUNCH_LINGER=0"}, nil},
		{"images.linger", append(withConf(t, "[images]\nlinger = \"0s\"\n"), "LAUNCH_LINGER="), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"-d", "exec"}, c.args...), img, "true")
			r := launchWith(t, runOpts{Env: c.env}, args...)
			wantOK(t, r)
			defer endWarm(t, r)
			m := regexp.MustCompile(`pid (\d+)\n`).FindStringSubmatch(r.Stderr)
			if m == nil {
				t.Fatalf("no squashfuse pid in the -d output:\n%s", r.Stderr)
			}
			fuse, _ := strconv.Atoi(m[1])
			waitGone(t, map[int]string{fuse: ""}, 3*time.Second, c.name)
			next := launchWith(t, runOpts{Env: []string{"LAUNCH_LINGER=0"}}, "-v", "exec", img, "true")
			wantOK(t, next)
			if warmUsed.MatchString(next.Stderr) {
				t.Errorf("with %s the next launch used a warm mount; stderr:\n%s", c.name, next.Stderr)
			}
		})
	}
	t.Run("bad values", func(t *testing.T) {
		wantFatal(t, launch(t, "exec", "--linger", "soon", img, "true"), "--linger", "soon")
		wantFatal(t, launch(t, "exec", "--linger", "2h", img, "true"), "--linger", "2h")
		env := withConf(t, "[images]\nlinger = \"-1s\"\n")
		wantFatal(t, launchWith(t, runOpts{Env: env}, "exec", img, "true"), "images.linger", "-1s")
	})
}

// TestWarmServerKilled: a launch reading from a warm mount whose squashfuse
// is killed under it fails with an error (and launch says why) instead of
// hanging; the holder then ends, and nothing is left.
func TestWarmServerKilled(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, map[string]string{"etc/warm-mark": "warm\n"})
	env := []string{"LAUNCH_LINGER=20s"}
	first := launchWith(t, runOpts{Env: env}, "-d", "exec", img, "true")
	wantOK(t, first)
	procs := heldBy(first)
	if len(procs) != 2 {
		t.Fatalf("no warm holder left by the first launch; stderr:\n%s", first.Stderr)
	}
	goFile := filepath.Join(t.TempDir(), "go")
	r := startLaunch(t, env, "in", "-v", "exec", img, "sh", "-c",
		`echo in; while [ ! -e "$1" ]; do sleep 0.05; done; cat /etc/warm-mark; echo "cat: $?"`, "sh", goFile)
	if n := fuseServers(descendantsOf(r.cmd.Process.Pid)); n != 0 {
		t.Errorf("the second launch has %d squashfuse processes of its own, want 0 (it joins the warm mount)", n)
	}
	for p, cl := range procs {
		if isImageServer(cl) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	time.Sleep(700 * time.Millisecond) // past the launch's warning delay
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := r.next(t); got == "warm" || !strings.HasPrefix(got, "cat: ") || got == "cat: 0" {
		t.Errorf("reading the image after its squashfuse was killed printed %q, want cat's failure", got)
	}
	r.wait(t, "the launch whose image server was killed")
	if e := r.errText(); !strings.Contains(e, "using the warm image mount of pid") ||
		!strings.Contains(e, "lost its squashfuse server; the image is no longer readable") {
		t.Errorf("the launch does not say why its image went away: %s", e)
	}
	waitGone(t, procs, 3*time.Second, "the warm holder whose squashfuse was killed")
}

// TestWarmOtherUser: another user's launch of the same image never joins
// root's warm mount (the rendezvous is per user; it mounts its own).
func TestWarmOtherUser(t *testing.T) {
	needSharing(t)
	if !isRoot() {
		t.Skip("needs root: the other user's launch runs through runuser")
	}
	name := os.Getenv("LAUNCH_E2E_USER")
	if name == "" {
		name = "launchtest"
	}
	if _, err := user.Lookup(name); err != nil {
		t.Skipf("no user %s (scripts/test creates it): %v", name, err)
	}
	dir, err := os.MkdirTemp(sharedBase(), "launch-warm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "image.sqfs")
	if err := copyFile(busyboxImage(t, nil), img, 0o644); err != nil {
		t.Fatal(err)
	}
	mine := launchWith(t, runOpts{Env: []string{"LAUNCH_LINGER=20s"}}, "-d", "exec", img, "true")
	wantOK(t, mine)
	defer endWarm(t, mine)
	cmd := exec.Command("runuser", "-u", name, "--", "env", "-i", "PATH=/usr/bin:/bin", "HOME=/", "LAUNCH_LINGER=0",
		launchBin(t), "-v", "-d", "exec", img, "true")
	cmd.Dir = dir
	other := runProcess(t, cmd, 0)
	wantOK(t, other)
	if warmUsed.MatchString(other.Stderr) || strings.Contains(other.Stderr, "using the image mount") ||
		!strings.Contains(other.Stderr, "serving the image mount") {
		t.Errorf("user %s's launch should mount the image itself; stderr:\n%s", name, other.Stderr)
	}
}

// TestWarmSlurmScancel: a warm mount kept inside a batch job (two launches
// in a row: the second joins the first's) ends when the job is cancelled,
// and one kept in an srun step when the step ends, long before the window,
// though the cluster tracks processes by their parents (proctrack/linuxproc)
// and the holder, whose launcher is gone, is no longer below the step's.
func TestWarmSlurmScancel(t *testing.T) {
	needSharing(t)
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
launch -d exec --linger 60s %[1]s true 2> first.txt
launch -v exec --linger 60s %[1]s cat /etc/marker 2> second.err > second.out
mv second.err second.txt
exec sleep 300
`, img))
	job := c.sbatch(t, dir, script)
	if err := waitUntil(time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(dir, "second.txt"))
		return err == nil
	}); err != nil {
		t.Fatalf("the job's launches did not run: %v; job output:\n%s", err, c.output(job))
	}
	if got := readFile(t, dir, "second.out"); got != "from-the-image\n" {
		t.Errorf("the second launch read %q, want from-the-image", got)
	}
	second := result{Stderr: readFile(t, dir, "second.txt")}
	if !warmUsed.MatchString(second.Stderr) {
		t.Fatalf("the second launch of the job did not use the first one's warm mount; first launch's -d output:\n%s\nsecond's:\n%s",
			readFile(t, dir, "first.txt"), second.Stderr)
	}
	pid := warmHolder(t, second)
	procs := holderProcs(t, pid)
	start := time.Now()
	if out, err := c.asUser(t.Context(), dir, nil, "scancel", strconv.Itoa(job)).CombinedOutput(); err != nil {
		t.Fatalf("scancel %d: %v: %s", job, err, out)
	}
	waitGone(t, procs, 2*slurmKillWait, "scancel of the job (window 60s)")
	t.Logf("the warm holder ended %v after scancel", time.Since(start).Round(time.Millisecond))
	c.waitJobState(t, job, 30*time.Second, "CANCELLED")

	// A step that ends by itself ends the warm mount kept in it too.
	r := c.run(t, 2*time.Minute, dir, nil, "srun", "-n", "1", "launch", "-d", "exec", "--linger", "60s", img, "true")
	if r.Code != 0 {
		t.Fatalf("srun launch: exit %d; stderr:\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "serving the image mount") {
		t.Fatalf("the srun step's launch did not serve its mount; stderr:\n%s", r.Stderr)
	}
	m := servedBy.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no squashfuse pid in the srun step's -d output:\n%s", r.Stderr)
	}
	fuse, _ := strconv.Atoi(m[1])
	if err := waitUntil(2*slurmKillWait, func() bool { return !isImageServer(procCmdline(fuse)) }); err != nil {
		t.Errorf("the warm mount's squashfuse (pid %d) still runs after its srun step ended (window 60s)", fuse)
	}
	noHostMounts(t, dir)
}

// TestWarmJoinerLeavesNothing: a launch that joins a warm mount (and so
// has no image server of its own under its stage) still kills what its
// payload left running before it reports the exit status.
func TestWarmJoinerLeavesNothing(t *testing.T) {
	needSharing(t)
	img := busyboxImage(t, map[string]string{"etc/joiner-mark": "x\n"})
	env := runOpts{Env: []string{"LAUNCH_LINGER=1s"}}
	wantOK(t, launchWith(t, env, "exec", img, "true"))
	r := launchWith(t, env, "-v", "exec", img, "sh", "-c", `sleep 3006 >/dev/null 2>&1 & kill -0 $! && echo $!`)
	wantOK(t, r)
	holder := holderProcs(t, warmHolder(t, r))
	// The holder ends with its window; the suite's leak check must not find it.
	defer waitGone(t, holder, 5*time.Second, "the warm holder after its 1s window")
	pid, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil {
		t.Fatalf("the payload printed %q, not the pid of its background sleep", r.Stdout)
	}
	procs := map[int]string{pid: "sleep 3006"}
	waitGone(t, procs, 2*time.Second, "the background sleep of a launch that joined a warm mount")
}
