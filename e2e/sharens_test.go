package e2e

// --sharens (issue 21): launches of one image by one user share user and
// mount namespaces; docs/instances.md.

import (
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

// TestShareNS: --sharens launches of one image by one user at the same
// time share the first one's user and mount namespaces (a plain launch
// beside them has its own); the first waits for the others before it
// exits, and nothing is left after.
func TestShareNS(t *testing.T) {
	env := instanceEnv(t)
	img := instanceImage(t, "")
	dir := t.TempDir()
	holderOut := filepath.Join(dir, "holder")
	holder := exec.Command(launchBin(t), "exec", "--sharens", img, "sh", "-c",
		"readlink /proc/self/ns/user > "+holderOut+".tmp; readlink /proc/self/ns/mnt >> "+holderOut+".tmp; mv "+holderOut+".tmp "+holderOut+"; sleep 1")
	holder.Env = append(os.Environ(), env...)
	done := make(chan result, 1)
	go func() { done <- runProcess(t, holder, time.Minute) }()
	var want string
	if err := waitUntil(20*time.Second, func() bool {
		b, err := os.ReadFile(holderOut)
		want = string(b)
		return err == nil
	}); err != nil {
		t.Fatalf("the first --sharens launch did not start: %v", err)
	}
	second := make(chan result, 1)
	go func() {
		second <- launchWith(t, runOpts{Env: env}, "exec", "--sharens", img, "sh", "-c", "readlink /proc/self/ns/user; readlink /proc/self/ns/mnt; sleep 2; exit 3")
	}()
	time.Sleep(300 * time.Millisecond)
	// The option's variable (APPTAINER_SHARENS, LAUNCH_SHARENS) does the
	// same, while the holder is still there (the second keeps it).
	r := launchWith(t, runOpts{Env: append([]string{"APPTAINER_SHARENS=1"}, env...)}, "exec", img, "sh", "-c", "readlink /proc/self/ns/user; readlink /proc/self/ns/mnt")
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("APPTAINER_SHARENS=1: status %d, namespaces %q, want 0 and the first's %q; stderr %q", r.Code, r.Stdout, want, r.Stderr)
	}
	if r := <-second; r.Code != 3 || r.Stdout != want {
		t.Errorf("a second --sharens launch: status %d, namespaces %q, want 3 and the first's %q; stderr %q", r.Code, r.Stdout, want, r.Stderr)
	}
	r = launchWith(t, runOpts{Env: env}, "exec", img, "readlink", "/proc/self/ns/user")
	wantOK(t, r)
	if strings.HasPrefix(want, r.Stdout) {
		t.Errorf("a launch without --sharens is in the shared user namespace %s", r.Stdout)
	}
	if h := <-done; h.Code != 0 {
		t.Errorf("the first --sharens launch: status %d, stderr %q", h.Code, h.Stderr)
	}
	wantFatal(t, launchWith(t, runOpts{Env: env}, "exec", "--sharens", "--pid", img, "true"), "--sharens cannot be used with")
}

// TestMPISharens: `mpirun -n 4 launch exec --sharens IMAGE` puts the four
// ranks in one user and mount namespace, so OpenMPI's single-copy
// mechanism (CMA) works between them: vader is not told to do without it,
// and OpenMPI says nothing.
func TestMPISharens(t *testing.T) {
	_, mpirun := needMPI(t)
	dir := t.TempDir()
	img := mpiImage(t, dir)
	env := instanceEnv(t)
	argv := []string{"-n", "4", "--oversubscribe"}
	if isRoot() {
		argv = append(argv, "--allow-run-as-root")
	}
	mpi := func(flags ...string) result {
		a := append(append(append([]string{}, argv...), launchBin(t), "exec"), flags...)
		a = append(a, img, "sh", "-c", `echo "userns $(readlink /proc/self/ns/user)"; exec /opt/hello`)
		cmd := exec.Command(mpirun, a...)
		cmd.Env = append(append(os.Environ(), env...), "OMPI_MCA_pml=ob1", "OMPI_MCA_btl=self,vader", "OMPI_MCA_btl_vader_single_copy_mechanism=cma")
		return runProcess(t, cmd, 2*time.Minute)
	}
	// Without --sharens, for contrast: four user namespaces, where CMA
	// cannot work (OpenMPI complains or fails).
	c := mpi()
	t.Logf("without --sharens, CMA forced: exit %d, OpenMPI complained: %v", c.Code,
		strings.Contains(c.Stderr, "help-") || strings.Contains(c.Stderr, "WARNING"))
	r := mpi("--sharens")
	if r.Code != 0 {
		t.Fatalf("mpirun exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	users := map[string]int{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		if u, ok := strings.CutPrefix(l, "userns "); ok {
			users[u]++
		}
	}
	if len(users) != 1 {
		t.Errorf("the ranks are in %d user namespaces, want one: %v\n%s", len(users), users, r.Stdout)
	}
	mnts := map[string]bool{}
	for _, m := range rankLine.FindAllStringSubmatch(r.Stdout, -1) {
		mnts[m[4]] = true
	}
	if len(mnts) != 1 || !strings.Contains(r.Stdout, "ring ok\n") {
		t.Errorf("want the four ranks in one mount namespace and the ring done:\n%s", r.Stdout)
	}
	noMPIWarnings(t, r.Stderr)

	// Under Slurm (root runs the cluster; the job runs as the test user):
	// srun --mpi=pmix, the four tasks of one step.
	if !isRoot() {
		return
	}
	t.Run("srun-pmix", func(t *testing.T) {
		c := slurm(t)
		jdir := c.jobDir(t)
		jimg := c.image(t, img, jdir)
		script := c.writeScript(t, jdir, "mpi.sh", fmt.Sprintf(`#!/bin/sh
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=cma
srun --mpi=pmix launch exec --sharens %s sh -c 'echo "userns $(readlink /proc/self/ns/user)"; exec /opt/hello' > srun.out 2> srun.err
echo "srun=$?" > status.txt
`, jimg))
		id, code := c.sbatchWait(t, jdir, script, "-n", "4", "-t", "5")
		if code != 0 || readFile(t, jdir, "status.txt") != "srun=0\n" {
			t.Fatalf("job %d: exit %d, %s; stderr:\n%s", id, code, readFile(t, jdir, "status.txt"), readFile(t, jdir, "srun.err"))
		}
		out := readFile(t, jdir, "srun.out")
		users := map[string]bool{}
		for _, l := range strings.Split(out, "\n") {
			if u, ok := strings.CutPrefix(l, "userns "); ok {
				users[u] = true
			}
		}
		if len(users) != 1 || !strings.Contains(out, "ring ok\n") {
			t.Errorf("srun --mpi=pmix: want the four tasks in one user namespace and the ring done:\n%s", out)
		}
		noMPIWarnings(t, readFile(t, jdir, "srun.err"))
	})
}

// TestShareNSJoinerKilled: a --sharens launch that joined another's
// namespaces (no PID namespace of its own) and is SIGKILLed takes its
// payload along, the processes the payload left in the background too
// (before, they were left running in the holder's namespaces).
func TestShareNSJoinerKilled(t *testing.T) {
	env := instanceEnv(t)
	img := instanceImage(t, "")
	dir := t.TempDir()
	up, stop, bg := filepath.Join(dir, "up"), filepath.Join(dir, "stop"), filepath.Join(dir, "bg")
	holder := exec.Command(launchBin(t), "exec", "--sharens", img, "sh", "-c",
		"readlink /proc/self/ns/mnt > "+up+".tmp; mv "+up+".tmp "+up+"; while [ ! -e "+stop+" ]; do sleep 0.1; done")
	holder.Env = append(os.Environ(), env...)
	done := make(chan result, 1)
	go func() { done <- runProcess(t, holder, time.Minute) }()
	defer func() {
		_ = os.WriteFile(stop, nil, 0o644)
		if h := <-done; h.Code != 0 {
			t.Errorf("the holding --sharens launch: status %d, stderr %q", h.Code, h.Stderr)
		}
	}()
	var mnt []byte
	if err := waitUntil(20*time.Second, func() bool {
		var err error
		mnt, err = os.ReadFile(up)
		return err == nil
	}); err != nil {
		t.Fatalf("the first --sharens launch did not start: %v", err)
	}
	joiner := exec.Command(launchBin(t), "exec", "--sharens", img, "sh", "-c",
		"sleep 311 & echo $! > "+bg+".tmp; readlink /proc/self/ns/mnt >> "+bg+".tmp; mv "+bg+".tmp "+bg+"; wait")
	joiner.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	joiner.Stderr = &stderr
	if err := joiner.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := waitUntil(20*time.Second, func() bool {
		b, err := os.ReadFile(bg)
		lines = strings.Fields(string(b))
		return err == nil
	}); err != nil {
		_ = joiner.Process.Kill()
		_ = joiner.Wait()
		t.Fatalf("the joining launch did not start its payload: %v; stderr %q", err, stderr.String())
	}
	if len(lines) != 2 || lines[1] != strings.TrimSpace(string(mnt)) {
		t.Errorf("the second launch wrote %q: want a pid and the holder's mount namespace %s", lines, mnt)
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil {
		t.Fatalf("the payload's background pid %q: %v", lines[0], err)
	}
	if !alive(pid, "sleep 311") {
		t.Fatalf("the payload's background process %d is not running before the kill", pid)
	}
	if err := joiner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = joiner.Wait()
	wantGone(t, map[int]string{pid: "sleep 311"}, 10*time.Second)
}
