package e2e

// Slurm: batch scripts, srun steps, job arrays and scancel, on the harness's
// single-node cluster, with jobs run as the unprivileged test user.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slurmImage is a busybox SIF readable by the job user, in dir, with
// /etc/marker holding "from-the-image".
func slurmImage(t *testing.T, c *slurmCluster, dir string) string {
	t.Helper()
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "marker"), []byte("from-the-image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c.image(t, buildSIF(t, tree), dir)
}

// readFile returns the content of dir/name, failing the test if it is missing.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("the job did not write %s: %v", name, err)
	}
	return string(data)
}

// TestSlurmBatch: a batch script calling launch exec writes its files as the
// user, sees the job's SLURM_* variables unchanged, and the container's exit
// status becomes the status launch exec returns in the script, the srun
// step's, and (as the script's last command) the job's.
func TestSlurmBatch(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
#SBATCH --job-name=launch-batch
IMG=%s
env | grep '^SLURM_' | sort > host-env.txt
launch exec "$IMG" sh -c 'env | grep "^SLURM_" | sort > container-env.txt; id -u > uid.txt; echo "hello from job $SLURM_JOB_ID" > out.txt; exit 7'
echo "exec=$?" > status.txt
srun -n 1 launch exec "$IMG" sh -c 'echo "step $SLURM_JOB_ID.$SLURM_STEP_ID" > step.txt; exit 5'
echo "srun=$?" >> status.txt
exec launch exec "$IMG" sh -c 'exit 3'
`, img))
	id, code := c.sbatchWait(t, dir, script)
	out := c.output(id)
	if code != 3 {
		t.Errorf("job exit status %d, want 3 (the last container's status); job output:\n%s", code, out)
	}
	job := c.job(t, id)
	if job["JobState"] != "FAILED" || job["ExitCode"] != "3:0" {
		t.Errorf("job %d: JobState=%s ExitCode=%s, want FAILED and 3:0", id, job["JobState"], job["ExitCode"])
	}
	if got, want := readFile(t, dir, "status.txt"), "exec=7\nsrun=5\n"; got != want {
		t.Errorf("status.txt %q, want %q (launch exec's status, then srun's)", got, want)
	}
	// srun reports the step's exit code as Slurm recorded it.
	if !strings.Contains(out, "Exited with exit code 5") {
		t.Errorf("srun did not report the step's exit code 5; job output:\n%s", out)
	}
	if got, want := readFile(t, dir, "out.txt"), fmt.Sprintf("hello from job %d\n", id); got != want {
		t.Errorf("out.txt %q, want %q", got, want)
	}
	if got, want := readFile(t, dir, "step.txt"), fmt.Sprintf("step %d.0\n", id); got != want {
		t.Errorf("step.txt %q, want %q", got, want)
	}
	if got := strings.TrimSpace(readFile(t, dir, "uid.txt")); got != strconv.Itoa(c.uid) {
		t.Errorf("uid inside the job's container %s, want %d", got, c.uid)
	}
	fileOwnedBy(t, filepath.Join(dir, "out.txt"), c.uid, c.gid)
	host, inside := readFile(t, dir, "host-env.txt"), readFile(t, dir, "container-env.txt")
	if !strings.Contains(host, fmt.Sprintf("SLURM_JOB_ID=%d\n", id)) {
		t.Fatalf("the batch shell has no SLURM_JOB_ID=%d:\n%s", id, host)
	}
	if inside != host {
		t.Errorf("SLURM_* inside the container differ from the batch shell's:\n inside:\n%s\n host:\n%s", inside, host)
	}
}

// fileOwnedBy checks path's owner.
func fileOwnedBy(t *testing.T, path string, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s owned by %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
	}
}

// TestSlurmSrunRanks: `srun -n 4 launch exec` starts four containers (four
// mount namespaces, none the host's), and each sees its own rank.
func TestSlurmSrunRanks(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	r := c.run(t, 2*time.Minute, dir, nil, "srun", "-n", "4", "launch", "exec", img, "sh", "-c",
		`echo "$SLURM_PROCID $SLURM_LOCALID $SLURM_NTASKS $SLURM_STEP_NUM_TASKS $(readlink /proc/self/ns/mnt)"`)
	if r.Code != 0 {
		t.Fatalf("srun -n 4: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	sort.Strings(lines)
	if len(lines) != 4 {
		t.Fatalf("want 4 ranks' lines, got %q (stderr %q)", lines, r.Stderr)
	}
	seen := map[string]bool{}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 5 || f[0] != strconv.Itoa(i) || f[1] != strconv.Itoa(i) || f[2] != "4" || f[3] != "4" {
			t.Errorf("rank %d printed %q, want \"%d %d 4 4 mnt:[…]\"", i, l, i, i)
			continue
		}
		if f[4] == hostNS {
			t.Errorf("rank %d runs in the host's mount namespace %s", i, f[4])
		}
		if seen[f[4]] {
			t.Errorf("rank %d shares mount namespace %s with another rank", i, f[4])
		}
		seen[f[4]] = true
	}
}

// TestSlurmArray: a job array of 20 tasks, each running a container, all
// succeed and each writes its own file.
func TestSlurmArray(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	script := c.writeScript(t, dir, "array.sh", fmt.Sprintf(`#!/bin/sh
exec launch exec %s sh -c 'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID" > "task-$SLURM_ARRAY_TASK_ID.txt"'
`, img))
	const n = 20
	id, code := c.sbatchWait(t, dir, script, fmt.Sprintf("--array=0-%d", n-1), "-o", filepath.Join(dir, "slurm-%A_%a.out"))
	if code != 0 {
		t.Errorf("array job exit status %d, want 0", code)
	}
	for i := 0; i < n; i++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("task-%d.txt", i)))
		if want := fmt.Sprintf("task %d of %d\n", i, id); err != nil || string(data) != want {
			out, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("slurm-%d_%d.out", id, i)))
			t.Errorf("task %d wrote %q (%v), want %q; its output: %s", i, data, err, want, out)
		}
	}
	recs := c.jobs(t, id)
	if len(recs) != n {
		t.Errorf("scontrol shows %d array tasks, want %d", len(recs), n)
	}
	for _, rec := range recs {
		if rec["JobState"] != "COMPLETED" || rec["ExitCode"] != "0:0" {
			t.Errorf("array task %s_%s: JobState=%s ExitCode=%s, want COMPLETED 0:0",
				rec["ArrayJobId"], rec["ArrayTaskId"], rec["JobState"], rec["ExitCode"])
		}
	}
}

// TestSlurmScancel (issue 3, "nothing left behind" after scancel): a job
// running `launch exec IMAGE sleep` is cancelled, as a batch job, as an srun
// step inside a batch job (scancel JOB.STEP) and as an interactive srun.
// The launcher, the container stage, squashfuse and the payload (with a
// background child of its own) — identified by their pids while the job ran
// — are all gone within KillWait; nothing of the image is mounted on the host;
// the job's TMPDIR and working directory hold nothing launch made.
func TestSlurmScancel(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	// The payload leaves a background process behind, writes "PID JOBID"
	// (atomically) and becomes a long sleep.
	payload := fmt.Sprintf(`launch exec %s sh -c 'sleep 2001 & echo "$$ $SLURM_JOB_ID" > payload.tmp && mv payload.tmp payload.pid; exec sleep 1000'`, img)
	cases := []struct {
		name   string
		script string // batch script; "" for an interactive srun
		step   bool   // cancel the step (JOB.0), not the job
		state  string // the job's final state
	}{
		{name: "batch", script: payload, state: "CANCELLED"},
		{name: "srun-step", script: "srun -n 1 " + payload + "\necho \"srun=$?\" > after.txt", step: true, state: "COMPLETED"},
		{name: "srun"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			work := filepath.Join(dir, tc.name)
			tmp := filepath.Join(work, "tmp")
			for _, d := range []string{work, tmp} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d, c.uid, c.gid); err != nil {
					t.Fatal(err)
				}
			}
			var srunDone chan result
			if tc.script != "" {
				script := c.writeScript(t, work, "job.sh", "#!/bin/sh\nexport TMPDIR="+tmp+"\n"+tc.script+"\n")
				c.sbatch(t, work, script)
			} else {
				srunDone = make(chan result, 1)
				go func() {
					srunDone <- c.run(t, 2*time.Minute, work, []string{"TMPDIR=" + tmp}, "srun", "-n", "1", "sh", "-c", payload)
				}()
			}
			var pid, job int
			if err := waitUntil(time.Minute, func() bool {
				data, err := os.ReadFile(filepath.Join(work, "payload.pid"))
				if err != nil {
					return false
				}
				_, err = fmt.Sscan(string(data), &pid, &job)
				return err == nil
			}); err != nil {
				t.Fatalf("the payload did not start: %v; job output:\n%s", err, c.output(job))
			}
			procs := containerProcs(t, pid)

			target := strconv.Itoa(job)
			if tc.step {
				target += ".0"
			}
			start := time.Now()
			if out, err := c.asUser(t.Context(), work, nil, "scancel", target).CombinedOutput(); err != nil {
				t.Fatalf("scancel %s: %v: %s", target, err, out)
			}
			var left []string
			err := waitUntil(slurmKillWait, func() bool {
				left = left[:0]
				for p, cl := range procs {
					if alive(p, cl) {
						left = append(left, fmt.Sprintf("%d %s", p, cl))
					}
				}
				return len(left) == 0
			})
			if err != nil {
				t.Errorf("still running %v after scancel %s (KillWait %v): %v", time.Since(start).Round(time.Millisecond), target, slurmKillWait, left)
			} else {
				t.Logf("all %d processes gone %v after scancel %s", len(procs), time.Since(start).Round(time.Millisecond), target)
			}
			output := c.output(job)
			if srunDone != nil {
				r := <-srunDone
				if r.Code == 0 {
					t.Errorf("srun exited 0 after its job was cancelled; stderr %q", r.Stderr)
				}
				output = r.Stderr
			}
			// Slurm signals every process of the step, squashfuse too: that
			// is an ending, not a failure worth a warning.
			if strings.Contains(output, "squashfuse server exited") {
				t.Errorf("launch warned about squashfuse on scancel:\n%s", output)
			}
			if st := c.waitJobState(t, job, 30*time.Second, "CANCELLED", "COMPLETED", "FAILED"); tc.state != "" && st != tc.state {
				t.Errorf("job %d ended %s, want %s", job, st, tc.state)
			}
			if tc.step {
				// The batch script went on after its step was cancelled.
				if got := readFile(t, work, "after.txt"); got == "srun=0\n" {
					t.Errorf("srun of the cancelled step returned 0")
				}
			}
			noHostMounts(t, dir)
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("the job's TMPDIR %s is not empty: %v", tmp, names(ents))
			}
			ents, _ := os.ReadDir(work)
			for _, e := range ents {
				switch e.Name() {
				case "tmp", "job.sh", "payload.pid", "after.txt", fmt.Sprintf("slurm-%d.out", job):
				default:
					t.Errorf("unexpected %s left in the job's directory", e.Name())
				}
			}
		})
	}
}

// containerProcs returns every process of the container whose payload is
// pid: the launcher (its grandparent: payload ← stage ← launcher) and all of
// the launcher's descendants (stage, squashfuse, payload and its children),
// pid → command line. It checks they look as docs/process-model.md says.
func containerProcs(t *testing.T, pid int) map[int]string {
	t.Helper()
	var procs map[int]string
	// The payload writes its pid just before it execs the sleep: wait for
	// the exec (and for the short-lived mv to be gone).
	err := waitUntil(10*time.Second, func() bool {
		launcher := procParent(procParent(pid))
		cl := procCmdline(launcher)
		if !strings.Contains(cl, "launch exec ") {
			return false
		}
		procs = descendantsOf(launcher)
		procs[launcher] = cl
		var fuse, sleeps int
		for _, c := range procs {
			if isImageServer(c) {
				fuse++
			}
			if strings.HasPrefix(c, "sleep 1000") || strings.HasPrefix(c, "sleep 2001") {
				sleeps++
			}
		}
		return fuse == 1 && sleeps == 2 && len(procs) == 5
	})
	if err != nil {
		t.Fatalf("want the launcher (the payload's grandparent), stage, squashfuse and two sleeps, got %v", procs)
	}
	return procs
}

// noHostMounts fails if anything below dir is mounted in the host's mount
// namespace, or a squashfuse mount serves a file below it.
func noHostMounts(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, dir) {
				t.Errorf("still mounted (%s): %s", f, l)
			}
		}
	}
}

func names(ents []os.DirEntry) []string {
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

// TestSlurmSignalStep: `scancel -s USR1 JOB.STEP` signals every process of
// the step (launcher, stage, squashfuse, payload); the payload's handler
// still reads from the image, and its exit status 0 is the step's.
func TestSlurmSignalStep(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := slurmImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
srun -n 1 launch exec %s sh -c 'trap "sleep 0.3; cat /etc/marker > got.txt; exit 0" USR1; echo "$SLURM_JOB_ID" > ready.txt; while :; do sleep 0.05; done'
echo "srun=$?" > status.txt
`, img))
	id := c.sbatch(t, dir, script)
	if err := waitUntil(time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready.txt"))
		return err == nil
	}); err != nil {
		t.Fatalf("the payload did not start; job output:\n%s", c.output(id))
	}
	step := fmt.Sprintf("%d.0", id)
	if out, err := c.asUser(t.Context(), dir, nil, "scancel", "-s", "USR1", step).CombinedOutput(); err != nil {
		t.Fatalf("scancel -s USR1 %s: %v: %s", step, err, out)
	}
	if err := waitUntil(time.Minute, func() bool { return jobEnded(c.job(t, id)["JobState"]) }); err != nil {
		t.Fatalf("job %d did not end after USR1 to its step: %v; output:\n%s", id, err, c.output(id))
	}
	if got := readFile(t, dir, "status.txt"); got != "srun=0\n" {
		t.Errorf("status.txt %q, want srun=0; job output:\n%s", got, c.output(id))
	}
	if got := readFile(t, dir, "got.txt"); got != "from-the-image\n" {
		t.Errorf("the USR1 handler read %q from the image, want from-the-image", got)
	}
}
