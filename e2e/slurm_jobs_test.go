package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Running jobs on the Slurm test cluster (started by slurm_harness_test.go):
// commands as the job user, job scripts, sbatch/srun and job state.

// userEnv is the whole environment of a command run as the job user: a clean
// login's, plus the cluster's config, plus extra.
func (c *slurmCluster) userEnv(extra ...string) []string {
	return append([]string{
		"PATH=" + c.bin + ":" + userPATH,
		"HOME=" + c.user.HomeDir,
		"USER=" + c.user.Username,
		"LOGNAME=" + c.user.Username,
		"SLURM_CONF=" + c.conf,
		suiteLinger,
	}, extra...)
}

// asUser is a command run as the job user (runuser, clean environment) in
// dir, killed when ctx ends.
func (c *slurmCluster) asUser(ctx context.Context, dir string, env []string, prog string, args ...string) *exec.Cmd {
	argv := append([]string{"-u", c.user.Username, "--", "env", "-i"}, c.userEnv(env...)...)
	argv = append(append(argv, prog), args...)
	cmd := exec.CommandContext(ctx, "runuser", argv...)
	cmd.Dir = dir
	return cmd
}

// run runs prog as the job user and returns its output and exit status.
func (c *slurmCluster) run(t *testing.T, timeout time.Duration, dir string, env []string, prog string, args ...string) result {
	t.Helper()
	return runProcess(t, c.asUser(context.Background(), dir, env, prog, args...), timeout)
}

// jobDir makes a fresh directory for one test's jobs, owned by the job user,
// removed after the test.
func (c *slurmCluster) jobDir(t *testing.T) string {
	t.Helper()
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	d, err := os.MkdirTemp(filepath.Join(c.dir, "jobs"), name+".")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, c.uid, c.gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// image copies the image at src into dir, readable by the job user.
func (c *slurmCluster) image(t *testing.T, src, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, filepath.Base(src))
	if err := copyFile(src, dst, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeScript writes a job script (owned by the job user) into dir.
func (c *slurmCluster) writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, c.uid, c.gid); err != nil {
		t.Fatal(err)
	}
	return p
}

// sbatchWait submits script from dir, the job's output in dir/slurm-JOB.out
// unless args say otherwise, waits until the job (every task of an array)
// has ended, and returns the job id and the job's exit status (scontrol's
// ExitCode; for an array the first task's). It polls scontrol rather than
// using sbatch --wait, whose polling interval grows to many seconds.
func (c *slurmCluster) sbatchWait(t *testing.T, dir, script string, args ...string) (int, int) {
	t.Helper()
	id := c.sbatch(t, dir, script, args...)
	var recs []map[string]string
	err := waitUntil(3*time.Minute, func() bool {
		recs = c.jobs(t, id)
		for _, r := range recs {
			if !jobEnded(r["JobState"]) {
				return false
			}
		}
		return len(recs) > 0
	})
	if err != nil {
		t.Fatalf("job %d did not end: %v; output:\n%s", id, err, c.output(id))
	}
	code, _ := strconv.Atoi(strings.SplitN(recs[0]["ExitCode"], ":", 2)[0])
	return id, code
}

// jobEnded reports whether a job state is final.
func jobEnded(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY":
		return true
	}
	return false
}

// sbatch submits script from dir and returns the job id at once.
func (c *slurmCluster) sbatch(t *testing.T, dir, script string, args ...string) int {
	t.Helper()
	argv := append([]string{"--parsable", "--chdir=" + dir, "-o", filepath.Join(dir, "slurm-%j.out")}, args...)
	r := c.run(t, time.Minute, dir, nil, "sbatch", append(argv, script)...)
	if r.Code != 0 {
		t.Fatalf("sbatch %s: exit %d: %s", script, r.Code, r.Stderr)
	}
	return parseJobID(t, r)
}

func parseJobID(t *testing.T, r result) int {
	t.Helper()
	first := strings.SplitN(strings.TrimSpace(r.Stdout), "\n", 2)[0]
	id, err := strconv.Atoi(strings.SplitN(first, ";", 2)[0])
	if err != nil {
		t.Fatalf("sbatch printed no job id: stdout %q stderr %q (exit %d)", r.Stdout, r.Stderr, r.Code)
	}
	return id
}

// job returns `scontrol show job`'s fields for id (the first record, for an
// array the first task's).
func (c *slurmCluster) job(t *testing.T, id int) map[string]string {
	t.Helper()
	out, err := c.root("scontrol", "-o", "show", "job", strconv.Itoa(id)).Output()
	if err != nil {
		t.Fatalf("scontrol show job %d: %v", id, err)
	}
	return parseFields(strings.SplitN(string(out), "\n", 2)[0])
}

// jobs returns `scontrol show job` records for every task of id (an array).
func (c *slurmCluster) jobs(t *testing.T, id int) []map[string]string {
	t.Helper()
	out, err := c.root("scontrol", "-o", "show", "job", strconv.Itoa(id)).Output()
	if err != nil {
		t.Fatalf("scontrol show job %d: %v", id, err)
	}
	var recs []map[string]string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			recs = append(recs, parseFields(l))
		}
	}
	return recs
}

// parseFields splits scontrol's one-line Key=Value output.
func parseFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitJobState waits until the job is in one of states, and returns it.
func (c *slurmCluster) waitJobState(t *testing.T, id int, timeout time.Duration, states ...string) string {
	t.Helper()
	var st string
	err := waitUntil(timeout, func() bool {
		st = c.job(t, id)["JobState"]
		for _, s := range states {
			if st == s {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("job %d is %s after %v, want one of %v; output:\n%s", id, st, timeout, states, c.output(id))
	}
	return st
}

// output is the job's slurm-JOB.out, if it can be found.
func (c *slurmCluster) output(id int) string {
	var out string
	want := fmt.Sprintf("slurm-%d.out", id)
	_ = filepath.WalkDir(filepath.Join(c.dir, "jobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == want {
			data, _ := os.ReadFile(p)
			out = string(data)
			return filepath.SkipAll
		}
		return nil
	})
	return out
}

// waitUntil polls cond every 50ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// freePorts returns n TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// copyFile copies src to dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
