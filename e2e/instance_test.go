package e2e

// Instances (issue 21): `launch instance start|list|stop` and
// `launch exec|shell instance://NAME`, as the unprivileged user and as root;
// under Slurm, an instance ends with its job. docs/instances.md.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// instanceEnv gives the test a home and a runtime directory of its own
// (mode 0700), so its instances' records and logs are its own; it stops
// every instance left there when the test ends.
func instanceEnv(t *testing.T) []string {
	t.Helper()
	base := t.TempDir()
	home, xdg := filepath.Join(base, "home"), filepath.Join(base, "xdg")
	for _, d := range []string{home, xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + xdg}
	t.Cleanup(func() { launchWith(t, runOpts{Env: env}, "instance", "stop", "--all", "--timeout", "2") })
	return env
}

// instanceImage is a busybox SIF with /www/index.html and, unless
// startscript is "", that startscript.
func instanceImage(t *testing.T, startscript string) string {
	t.Helper()
	tree := busyboxTree(t)
	if err := os.MkdirAll(filepath.Join(tree, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "www", "index.html"), []byte("hello-from-the-instance\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if startscript != "" {
		if err := os.MkdirAll(filepath.Join(tree, ".singularity.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, ".singularity.d", "startscript"), []byte(startscript), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return buildSIF(t, tree)
}

// instanceInfo is one entry of `instance list --json`.
type instanceInfo struct {
	Instance string `json:"instance"`
	Pid      int    `json:"pid"`
	Image    string `json:"img"`
	LogOut   string `json:"logOutPath"`
	LogErr   string `json:"logErrPath"`
}

// listInstances runs `instance list --json`.
func listInstances(t *testing.T, env []string) map[string]instanceInfo {
	t.Helper()
	r := launchWith(t, runOpts{Env: env}, "instance", "list", "--json")
	wantOK(t, r)
	var out struct{ Instances []instanceInfo }
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("instance list --json: %v: %q", err, r.Stdout)
	}
	m := map[string]instanceInfo{}
	for _, i := range out.Instances {
		m[i.Instance] = i
	}
	return m
}

// instanceProcs is the init pid of instance name and every process of the
// instance: the init, its descendants and the two launch processes above it
// (the launcher, and the launch outside the PID namespace).
func instanceProcs(t *testing.T, env []string, name string) (int, map[int]string) {
	t.Helper()
	info, ok := listInstances(t, env)[name]
	if !ok || info.Pid <= 0 {
		t.Fatalf("instance %s is not listed", name)
	}
	procs := descendantsOf(info.Pid)
	procs[info.Pid] = procCmdline(info.Pid)
	for p, i := procParent(info.Pid), 0; i < 2 && p > 1; p, i = procParent(p), i+1 {
		procs[p] = procCmdline(p)
	}
	return info.Pid, procs
}

// wantGone fails unless every process of procs ends within d.
func wantGone(t *testing.T, procs map[int]string, d time.Duration) {
	t.Helper()
	var left []string
	if err := waitUntil(d, func() bool {
		left = left[:0]
		for p, cl := range procs {
			if alive(p, cl) {
				left = append(left, fmt.Sprintf("%d %s", p, cl))
			}
		}
		return len(left) == 0
	}); err != nil {
		t.Errorf("still running: %v", left)
	}
}

// nsOf is /proc/PID/ns/NAME's link, as the host sees it.
func nsOf(t *testing.T, pid int, name string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestInstanceService: an instance whose startscript runs busybox httpd on
// 127.0.0.1 answers from the host; it is listed; exec instance://NAME runs
// in the instance's own user, mount and PID namespaces (the same inodes as
// its init), on its root, with this command line's environment and the
// payload's exit status; shell instance://NAME reads its standard input;
// its output is in its log file; stop ends every process of it and its
// record, and the port is closed again.
func TestInstanceService(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "#!/bin/sh\necho svc-started \"$@\"\nexec httpd -f -p 127.0.0.1:$1 -h /www\n")
	port := freePort(t)
	r := launchWith(t, o, "instance", "start", img, "web", strconv.Itoa(port))
	wantOK(t, r)
	pid, procs := instanceProcs(t, env, "web")
	if got := listInstances(t, env)["web"].Image; got != img {
		t.Errorf("listed image %q, want %q", got, img)
	}
	r = launchWith(t, o, "instance", "list")
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "web") || !strings.Contains(r.Stdout, strconv.Itoa(pid)) {
		t.Errorf("instance list does not show web (pid %d): %q", pid, r.Stdout)
	}

	var body string
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", port)
	if err := waitUntil(10*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	}); err != nil {
		t.Fatalf("the instance's httpd does not answer on %s: %v", url, err)
	}
	if body != "hello-from-the-instance\n" {
		t.Errorf("httpd answered %q", body)
	}

	for _, ns := range []string{"mnt", "user", "pid"} {
		r := launchWith(t, o, "exec", "instance://web", "readlink", "/proc/self/ns/"+ns)
		wantOK(t, r)
		if got, want := strings.TrimSpace(r.Stdout), nsOf(t, pid, ns); got != want {
			t.Errorf("exec instance://web sees %s, its init has %s", got, want)
		}
		if got := nsOf(t, os.Getpid(), ns); got == strings.TrimSpace(r.Stdout) && ns != "pid" {
			t.Errorf("exec instance://web is in the host's %s namespace", ns)
		}
	}
	r = launchWith(t, o, "exec", "--env", "FOO=from-the-join", "instance://web", "sh", "-c", "cat /www/index.html; echo $FOO; exit 7")
	if r.Code != 7 || r.Stdout != "hello-from-the-instance\nfrom-the-join\n" {
		t.Errorf("exec instance://web: status %d, stdout %q, stderr %q; want 7 and the image's file and $FOO", r.Code, r.Stdout, r.Stderr)
	}
	r = launchWith(t, runOpts{Env: env, Stdin: "echo in-the-shell $$\n"}, "shell", "instance://web")
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "in-the-shell") {
		t.Errorf("shell instance://web: %q", r.Stdout)
	}

	// test, inspect and run-help of the instance: its image's.
	r = launchWith(t, o, "test", "instance://web")
	if wantOK(t, r); !strings.Contains(r.Stderr, "No test script found") {
		t.Errorf("test instance://web: %q", r.Stderr)
	}
	wantOK(t, launchWith(t, o, "inspect", "instance://web"))
	wantOK(t, launchWith(t, o, "run-help", "instance://web"))
	wantFatal(t, launchWith(t, o, "inspect", "instance://no-such"), "instance://no-such", "no instance")

	r = launchWith(t, o, "instance", "list", "--logs")
	wantOK(t, r)
	out := listInstances(t, env)["web"].LogOut
	if !strings.Contains(r.Stdout, out) {
		t.Errorf("instance list --logs does not show %s: %q", out, r.Stdout)
	}
	if data, err := os.ReadFile(out); err != nil || string(data) != "svc-started "+strconv.Itoa(port)+"\n" {
		t.Errorf("log %s: %q, %v", out, data, err)
	}

	r = launchWith(t, o, "instance", "stop", "web")
	wantOK(t, r)
	wantGone(t, procs, 5*time.Second)
	if _, ok := listInstances(t, env)["web"]; ok {
		t.Errorf("web still listed after stop")
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still answers after stop", port)
	}
	records, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(env[1], "XDG_RUNTIME_DIR="), "launch", "instances", "*", "*"))
	if len(records) != 0 {
		t.Errorf("records left after stop: %v", records)
	}
}

// TestInstanceTwoOfOneImage: two instances of one image (without a
// startscript: `instance start` waits to be stopped; `instance run`, whose
// runscript ends at once, lives on) have their own mount namespaces; stop
// --all ends both.
func TestInstanceTwoOfOneImage(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "")
	wantOK(t, launchWith(t, o, "instance", "start", img, "one"))
	// instance run: the runscript (here /bin/sh, at once at end-of-file);
	// the instance outlives its payload.
	wantOK(t, launchWith(t, o, "instance", "run", img, "two"))
	pid1, procs := instanceProcs(t, env, "one")
	pid2, procs2 := instanceProcs(t, env, "two")
	for p, c := range procs2 {
		procs[p] = c
	}
	if nsOf(t, pid1, "mnt") == nsOf(t, pid2, "mnt") {
		t.Errorf("two instances share a mount namespace")
	}
	for n, pid := range map[string]int{"one": pid1, "two": pid2} {
		r := launchWith(t, o, "exec", "instance://"+n, "readlink", "/proc/self/ns/mnt")
		wantOK(t, r)
		if strings.TrimSpace(r.Stdout) != nsOf(t, pid, "mnt") {
			t.Errorf("exec instance://%s is not in its mount namespace", n)
		}
	}
	wantOK(t, launchWith(t, o, "instance", "stop", "--all"))
	wantGone(t, procs, 5*time.Second)
	if l := listInstances(t, env); len(l) != 0 {
		t.Errorf("instances left after stop --all: %v", l)
	}
}

// TestInstanceStopTimeout: an instance that ignores SIGTERM is killed after
// --timeout, with a warning; nothing of it is left.
func TestInstanceStopTimeout(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n")
	wantOK(t, launchWith(t, o, "instance", "start", img, "stubborn"))
	pid, _ := instanceProcs(t, env, "stubborn")
	if err := waitUntil(10*time.Second, func() bool {
		for _, c := range descendantsOf(pid) {
			if c == "sleep 1000" { // the trap is set
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("the startscript did not get to its sleep: %v", descendantsOf(pid))
	}
	_, procs := instanceProcs(t, env, "stubborn")
	start := time.Now()
	r := launchWith(t, o, "instance", "stop", "--timeout", "1", "stubborn")
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "did not end within 1s of SIGTERM") {
		t.Errorf("stop --timeout 1 of an instance ignoring TERM: no warning: %q", r.Stderr)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("stop took %v, want about 1s", d)
	}
	wantGone(t, procs, 5*time.Second)
}

// TestInstanceBadInput: one FATAL line each, and a clean state after.
func TestInstanceBadInput(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "")
	wantFatal(t, launchWith(t, o, "instance", "start", img, "bad/name"), "invalid instance name")
	wantFatal(t, launchWith(t, o, "instance", "start", img, "-x"), "invalid instance name")
	wantFatal(t, launchWith(t, o, "exec", "instance://nope", "true"), "no instance nope")
	wantFatal(t, launchWith(t, o, "instance", "stop", "nope"), "no instance nope")
	wantFatal(t, launchWith(t, o, "instance", "start", filepath.Join(t.TempDir(), "missing.sif"), "m"), "did not start", "does not exist")
	if l := listInstances(t, env); len(l) != 0 {
		t.Errorf("a failed start left %v", l)
	}

	wantOK(t, launchWith(t, o, "instance", "start", img, "x"))
	wantFatal(t, launchWith(t, o, "instance", "start", img, "x"), "instance name x is in use")
	wantFatal(t, launchWith(t, o, "exec", "-B", "/tmp", "instance://x", "true"), "--bind", "instance")
	wantFatal(t, launchWith(t, o, "instance", "stop", "--signal", "NOPE", "x"), "--signal NOPE")
	wantFatal(t, launchWith(t, o, "instance", "stop", "--timeout", "-1", "x"), "--timeout -1")

	// A crash of the init (SIGKILL) takes every process of the instance
	// along; its record is then stale: a join says so, and the record goes.
	pid, procs := instanceProcs(t, env, "x")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantGone(t, procs, 5*time.Second)
	wantFatal(t, launchWith(t, o, "exec", "instance://x", "true"), "instance x is no longer running")
	if l := listInstances(t, env); len(l) != 0 {
		t.Errorf("a dead instance is listed: %v", l)
	}
	wantOK(t, launchWith(t, o, "instance", "start", img, "x")) // the name is free again

	// Records that lie: another user's process, a link, a file others can write.
	host, _ := os.Hostname()
	dir := filepath.Join(strings.TrimPrefix(env[1], "XDG_RUNTIME_DIR="), "launch", "instances", host)
	other := 1 // init: root's
	if isRoot() {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		other = cmd.Process.Pid
	}
	forge := func(name string, pid int) string {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		st, _ := strconv.ParseUint(f[19], 10, 64)
		rec := fmt.Sprintf(`{"version":1,"name":%q,"uid":%d,"host":%q,"pid":%d,"start_time":%d,"namespaces":{"pid":true},"join":{}}`,
			name, os.Getuid(), host, pid, st)
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	forge("other", other)
	wantFatal(t, launchWith(t, o, "exec", "instance://other", "true"), "not your instance")
	p := forge("open", os.Getpid())
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, launchWith(t, o, "exec", "instance://open", "true"), "written by others")
	if err := os.Symlink(filepath.Join(dir, "x.json"), filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	wantFatal(t, launchWith(t, o, "exec", "instance://link", "true"), "link.json")
	wantOK(t, launchWith(t, o, "exec", "instance://x", "true")) // the real one still works
}

// TestInstanceSlurm: an instance started in a batch job is ended by
// scancel of the job: every process of it is gone within KillWait, and
// nothing of it is mounted on the host.
func TestInstanceSlurm(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
export HOME=%[1]s/home XDG_RUNTIME_DIR=%[1]s/xdg
mkdir -m 700 "$HOME" "$XDG_RUNTIME_DIR"
launch instance start %[2]s job-svc || exit 1
launch instance list --json > list.tmp && mv list.tmp list.json
exec sleep 1000
`, dir, img))
	job := c.sbatch(t, dir, script)
	var pid int
	if err := waitUntil(time.Minute, func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "list.json"))
		if err != nil {
			return false
		}
		var l struct{ Instances []instanceInfo }
		if json.Unmarshal(data, &l) != nil || len(l.Instances) != 1 {
			return false
		}
		pid = l.Instances[0].Pid
		return true
	}); err != nil {
		t.Fatalf("the instance did not start in the job: %v; job output:\n%s", err, c.output(job))
	}
	procs := descendantsOf(pid)
	procs[pid] = procCmdline(pid)
	for p, i := procParent(pid), 0; i < 2 && p > 1; p, i = procParent(p), i+1 {
		procs[p] = procCmdline(p)
	}
	if len(procs) < 4 {
		t.Fatalf("want the launcher, the outer launch, the init and squashfuse; got %v", procs)
	}
	start := time.Now()
	if out, err := c.asUser(t.Context(), dir, nil, "scancel", strconv.Itoa(job)).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v: %s", err, out)
	}
	wantGone(t, procs, slurmKillWait+5*time.Second)
	t.Logf("%d processes of the instance gone %v after scancel", len(procs), time.Since(start).Round(time.Millisecond))
	noHostMounts(t, dir)
}

// TestInstanceNamespaces: an instance started with --net, --ipc and
// --hostname has those namespaces, and a join enters them too.
func TestInstanceNamespaces(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "")
	wantOK(t, launchWith(t, o, "instance", "start", "--net", "--ipc", "--hostname", "inst-host", img, "ns"))
	pid, _ := instanceProcs(t, env, "ns")
	r := launchWith(t, o, "exec", "instance://ns", "sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname")
	wantOK(t, r)
	want := fmt.Sprintf("%s\n%s\n%s\ninst-host\n", nsOf(t, pid, "net"), nsOf(t, pid, "ipc"), nsOf(t, pid, "uts"))
	if r.Stdout != want {
		t.Errorf("exec instance://ns sees %q, want the init's %q", r.Stdout, want)
	}
	if nsOf(t, pid, "net") == nsOf(t, os.Getpid(), "net") {
		t.Errorf("the instance started with --net is in the host's network namespace")
	}
	wantOK(t, launchWith(t, o, "instance", "stop", "ns"))
}

// TestInstanceUnwatchedJob: inside a job of a batch system whose end launch
// cannot watch (PBS, LSF, Flux, Grid Engine), instance start refuses, for
// the instance would outlive the job (under Slurm it is anchored to the
// job: TestInstanceSlurm).
func TestInstanceUnwatchedJob(t *testing.T) {
	env := instanceEnv(t)
	img := instanceImage(t, "")
	for _, v := range []string{"PBS_JOBID=12.server", "LSB_JOBID=7", "FLUX_JOB_ID=f2", "JOB_ID=9"} {
		r := launchWith(t, runOpts{Env: append([]string{v}, env...)}, "instance", "start", img, "job")
		wantFatal(t, r, "not started inside this batch job ("+strings.SplitN(v, "=", 2)[0]+" is set)")
	}
	if got := listInstances(t, env); len(got) != 0 {
		t.Errorf("instances after the refused starts: %v", got)
	}
}

// TestInstanceDashArgs: `instance start [opts] IMAGE NAME -- -x` starts
// IMAGE with the options given (IMAGE is not taken for one of them), and
// everything after NAME goes to the startscript as it is, "--" included,
// as after IMAGE with exec (option parsing stops at the first argument).
func TestInstanceDashArgs(t *testing.T) {
	env := instanceEnv(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	img := instanceImage(t, "#!/bin/sh\necho \"$MARK:$*\" > "+out+".tmp; mv "+out+".tmp "+out+"\nexec sleep 300\n")
	o := runOpts{Env: env}
	wantOK(t, launchWith(t, o, "instance", "start", "--env", "MARK=m1", img, "dash", "--", "-x", "--y"))
	defer launchWith(t, o, "instance", "stop", "dash")
	if err := waitUntil(20*time.Second, func() bool { _, err := os.Stat(out); return err == nil }); err != nil {
		t.Fatalf("the startscript did not run: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "m1:-- -x --y\n" {
		t.Errorf("the startscript got %q, want %q", b, "m1:-- -x --y\n")
	}
	if got := listInstances(t, env)["dash"].Image; got != img {
		t.Errorf("instance list says image %q, want %q", got, img)
	}
}

// TestInstanceGlobs: instance list and stop take Apptainer's glob patterns
// ('web*'); a pattern that matches nothing, or a malformed one, is one
// clear error, and stops nothing.
func TestInstanceGlobs(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	img := instanceImage(t, "")
	for _, n := range []string{"web1", "web2", "db"} {
		wantOK(t, launchWith(t, o, "instance", "start", img, n))
	}
	procs := map[int]string{}
	for _, n := range []string{"web1", "web2", "db"} {
		_, p := instanceProcs(t, env, n)
		for k, v := range p {
			procs[k] = v
		}
	}
	r := launchWith(t, o, "instance", "list", "--json", "web*")
	wantOK(t, r)
	if strings.Count(r.Stdout, `"instance"`) != 2 || !strings.Contains(r.Stdout, `"web1"`) || !strings.Contains(r.Stdout, `"web2"`) {
		t.Errorf("instance list 'web*': %s", r.Stdout)
	}
	wantFatal(t, launchWith(t, o, "instance", "stop", "nomatch*"), `"nomatch*"`)
	wantFatal(t, launchWith(t, o, "instance", "stop", "web[", "db"), `"web["`)
	if l := listInstances(t, env); len(l) != 3 {
		t.Fatalf("a failed stop stopped something: %v", l)
	}
	wantOK(t, launchWith(t, o, "instance", "stop", "web?"))
	l := listInstances(t, env)
	if _, ok := l["db"]; len(l) != 1 || !ok {
		t.Errorf("after stop 'web?': %v, want db alone", l)
	}
	wantOK(t, launchWith(t, o, "instance", "stop", "*"))
	wantGone(t, procs, 5*time.Second)
	if l := listInstances(t, env); len(l) != 0 {
		t.Errorf("instances left after stop '*': %v", l)
	}
}

// TestInstancePidFileAndName: instance start --pid-file writes the
// instance's PID (as instance list has it), a path that cannot be made
// starts nothing, and a start that fails leaves no pid file; inside the
// instance, and in what joins it, APPTAINER_INSTANCE names it.
func TestInstancePidFileAndName(t *testing.T) {
	env := instanceEnv(t)
	o := runOpts{Env: env}
	named := filepath.Join(t.TempDir(), "name")
	img := instanceImage(t, "#!/bin/sh\necho \"$APPTAINER_INSTANCE\" >"+named+"\nexec sleep 600\n")
	pf := filepath.Join(t.TempDir(), "web.pid")
	wantOK(t, launchWith(t, o, "instance", "start", "--pid-file", pf, img, "web"))
	b, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	l := listInstances(t, env)
	if strings.TrimSpace(string(b)) != strconv.Itoa(l["web"].Pid) || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("--pid-file holds %q, instance list says pid %d", b, l["web"].Pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b, _ := os.ReadFile(named); string(b) != "web\n"; b, _ = os.ReadFile(named) {
		if time.Now().After(deadline) {
			t.Fatalf("the startscript saw APPTAINER_INSTANCE %q, want web", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := launchWith(t, o, "exec", "instance://web", "sh", "-c", `echo "$APPTAINER_INSTANCE|$SINGULARITY_INSTANCE|$LAUNCH_INSTANCE"`)
	if wantOK(t, r); strings.TrimSpace(r.Stdout) != "web|web|web" {
		t.Errorf("exec instance://web: %q, want the instance's name three times", r.Stdout)
	}
	if n := launch(t, "exec", img, "sh", "-c", `echo "[$APPTAINER_INSTANCE]"`); strings.TrimSpace(n.Stdout) != "[]" {
		t.Errorf("outside an instance APPTAINER_INSTANCE is %q", n.Stdout)
	}
	wantFatal(t, launchWith(t, o, "instance", "start", "--pid-file", filepath.Join(t.TempDir(), "no", "such", "x.pid"), img, "w2"), "--pid-file")
	// A start that fails (the name is in use) leaves an existing pid file
	// as it was.
	wantFatal(t, launchWith(t, o, "instance", "start", "--pid-file", pf, img, "web"), "in use")
	if b2, _ := os.ReadFile(pf); string(b2) != string(b) {
		t.Errorf("a failed start changed the pid file: %q, was %q", b2, b)
	}
	if isRoot() { // a file of another user's is refused
		other := filepath.Join(t.TempDir(), "other.pid")
		if err := os.WriteFile(other, []byte("1\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		wantFatal(t, launchWith(t, o, "instance", "start", "--pid-file", other, img, "w4"), "not a file of your own")
	}
	gone := filepath.Join(t.TempDir(), "failed.pid")
	wantFatal(t, launchWith(t, o, "instance", "start", "--pid-file", gone, filepath.Join(t.TempDir(), "missing.sif"), "w3"), "did not start")
	if _, err := os.Stat(gone); err == nil {
		t.Error("a failed start left its pid file")
	}
	if l := listInstances(t, env); len(l) != 1 {
		t.Errorf("instances after the failed starts: %v, want web alone", l)
	}
	_, procs := instanceProcs(t, env, "web")
	wantOK(t, launchWith(t, o, "instance", "stop", "web"))
	wantGone(t, procs, 5*time.Second)
}
