package e2e

// MPI, hybrid model: the host's OpenMPI (mpirun, or srun with PMIx) starts
// one `launch exec` per rank, and the MPI program in the image, linked with
// the same OpenMPI, talks to its peers in the other containers.

import (
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mpiEnv makes the ranks talk through shared memory only (pml ob1, btl
// self+vader: no TCP or network fallback) and turns off vader's single-copy
// mechanism (CMA), which OpenMPI refuses between processes in different user
// namespaces, each rank's container having its own (docs/slurm.md).
var mpiEnv = []string{
	"OMPI_MCA_pml=ob1",
	"OMPI_MCA_btl=self,vader",
	"OMPI_MCA_btl_vader_single_copy_mechanism=none",
}

// needMPI returns the path of mpicc and mpirun, or skips (not root) / fails
// (root: scripts/install-deps installs OpenMPI then).
func needMPI(t *testing.T) (mpicc, mpirun string) {
	t.Helper()
	for _, p := range []*string{&mpicc, &mpirun} {
		name := map[*string]string{&mpicc: "mpicc", &mpirun: "mpirun"}[p]
		path, err := exec.LookPath(name)
		if err != nil {
			if !isRoot() {
				t.Skipf("%s not found (OpenMPI is not installed; scripts/install-deps installs it as root)", name)
			}
			t.Fatalf("%s not found: OpenMPI must be installed for the e2e suite's root pass (scripts/install-deps): %v", name, err)
		}
		*p = path
	}
	return mpicc, mpirun
}

// mpiImage compiles testdata/mpi_hello.c with the host's mpicc and packs it
// as /opt/hello into a SIF, in dir, with what it needs at run time: the files
// of the OpenMPI and PMIx runtime packages (libraries, dlopen'ed components,
// help texts, default MCA parameters) and every library they and the program
// link with (per ldd), on a busybox tree. The image's OpenMPI is the host's,
// the usual arrangement for the hybrid model.
func mpiImage(t *testing.T, dir string) string {
	t.Helper()
	mpicc, _ := needMPI(t)
	build := t.TempDir()
	hello := filepath.Join(build, "hello")
	if out, err := exec.Command(mpicc, "-O2", "-o", hello, "testdata/mpi_hello.c").CombinedOutput(); err != nil {
		t.Fatalf("mpicc testdata/mpi_hello.c: %v\n%s", err, out)
	}
	files := []string{hello}
	out, err := exec.Command("dpkg-query", "-L", "libopenmpi3", "libpmix2", "openmpi-common").Output()
	if err != nil {
		t.Fatalf("listing the OpenMPI runtime packages' files (dpkg-query -L libopenmpi3 libpmix2 openmpi-common): %v", err)
	}
	for _, f := range strings.Split(string(out), "\n") {
		if f == "" || regexp.MustCompile(`^/usr/share/(doc|man|lintian)/`).MatchString(f) {
			continue
		}
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			files = append(files, f)
		}
	}
	// The interpreter and libraries the program needs (ldd), and then,
	// read from the ELF headers (one ldd each would take a minute on a
	// loaded CI machine), those every shared object needs.
	out, err = exec.Command("ldd", hello).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", hello, err)
	}
	var dirs []string
	for _, m := range regexp.MustCompile(`(?m)(?:=> )?(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		files = append(files, m[1])
		dirs = append(dirs, filepath.Dir(m[1]))
	}
	files, err = elfClosure(files, dirs)
	if err != nil {
		t.Fatal(err)
	}
	tree := busyboxTree(t)
	// A merged-/usr layout, as Debian's: /lib and /lib64 are links into /usr.
	for _, d := range []string{"usr/lib", "usr/lib64", "opt"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(tree, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(hello, filepath.Join(tree, "opt", "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files[1:] {
		// Resolve the directory (/lib → /usr/lib), keep the name (a soname
		// link becomes a copy of its target).
		hostDir, err := filepath.EvalSymlinks(filepath.Dir(f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(tree, hostDir, filepath.Base(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := copyFile(f, dst, fi.Mode().Perm()|0o444); err != nil {
			t.Fatalf("copying %s into the image: %v", f, err)
		}
	}
	img := filepath.Join(dir, "mpi.sif")
	wantOK(t, launchWith(t, runOpts{Timeout: 3 * time.Minute}, "build", "-q", img, tree))
	if err := os.Chmod(img, 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// elfClosure adds to files every shared library their ELF dynamic sections
// need (DT_NEEDED, transitively), looked up in each object's RUNPATH/RPATH
// and then in dirs, the way the dynamic loader would on this host. Files
// that are not ELF are kept as they are.
func elfClosure(files, dirs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, f := range files {
		add(f)
	}
	for i := 0; i < len(out); i++ {
		f := out[i]
		ef, err := elf.Open(f)
		if err != nil {
			continue // not ELF: a help text, a config file
		}
		needed, _ := ef.ImportedLibraries()
		var search []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			paths, _ := ef.DynString(tag)
			for _, p := range paths {
				for _, d := range strings.Split(p, ":") {
					search = append(search, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(f)))
				}
			}
		}
		ef.Close()
		for _, lib := range needed {
			found := ""
			for _, d := range append(search, dirs...) {
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					found = filepath.Join(d, lib)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, found in none of %v", f, lib, append(search, dirs...))
			}
			add(found)
		}
	}
	return out, nil
}

// rankLine is what mpi_hello prints for each rank.
var rankLine = regexp.MustCompile(`(?m)^rank (\d+) of (\d+) pid (\d+) (mnt:\[\d+\])$`)

// checkHello checks mpi_hello's output for n ranks: each rank reported once,
// each in its own mount namespace (its own container, none the host's), the
// ring and the reduction done.
func checkHello(t *testing.T, out string, n int) {
	t.Helper()
	hostNS, _ := os.Readlink("/proc/self/ns/mnt")
	ranks := map[int]bool{}
	ns := map[string]bool{}
	for _, m := range rankLine.FindAllStringSubmatch(out, -1) {
		r, _ := strconv.Atoi(m[1])
		if m[2] != strconv.Itoa(n) {
			t.Errorf("rank %d sees a world of %s, want %d", r, m[2], n)
		}
		if ranks[r] {
			t.Errorf("rank %d reported twice", r)
		}
		ranks[r] = true
		if m[4] == hostNS || ns[m[4]] {
			t.Errorf("rank %d's mount namespace %s is the host's or another rank's", r, m[4])
		}
		ns[m[4]] = true
	}
	if len(ranks) != n {
		t.Errorf("%d of %d ranks reported; output:\n%s", len(ranks), n, out)
	}
	if !strings.Contains(out, "ring ok\n") || !strings.Contains(out, fmt.Sprintf("sum %d\n", n*(n-1)/2)) {
		t.Errorf("the ring exchange or the reduction did not complete; output:\n%s", out)
	}
}

// noMPIWarnings fails on OpenMPI's help messages (a CMA warning, a
// transport that could not be used).
func noMPIWarnings(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{"help-", "WARNING", "----------"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("OpenMPI complained:\n%s", stderr)
			return
		}
	}
}

// marker returns a NAME=VALUE unique to this test, to put in the environment
// of what it starts and find any process left over.
func marker(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "LAUNCH_E2E_MARK=" + hex.EncodeToString(b)
}

// markedProcs lists live processes whose environment holds mark (exactly),
// and FUSE servers whose parent does (their own environment is clean).
func markedProcs(mark string) []string {
	var left []string
	for pid, p := range readProcs() {
		if pid == os.Getpid() || p.Cmdline == "" || p.Zombie() {
			continue
		}
		if environHas(pid, mark) || isImageServer(p.Cmdline) && environHas(p.PPid, mark) {
			left = append(left, fmt.Sprintf("%d %s", pid, p.Cmdline))
		}
	}
	sort.Strings(left)
	return left
}

// noneMarked waits up to 2s for every process carrying mark to be gone.
func noneMarked(t *testing.T, mark string) {
	t.Helper()
	var left []string
	if waitUntil(2*time.Second, func() bool { left = markedProcs(mark); return len(left) == 0 }) != nil {
		t.Errorf("left running: %v", left)
	}
}

// TestMPI runs the MPI image four ways. As any user, the host's `mpirun -n 4
// --oversubscribe launch exec IMAGE /opt/hello`: four containers, every rank
// reports, the ring crosses them through shared memory; and when one rank's
// container cannot start, mpirun aborts the others at once and nothing is
// left. As root, on the Slurm test cluster, as the job user: srun
// --mpi=pmix and mpirun inside an allocation, a failing rank under srun, and a
// job whose image is missing.
func TestMPI(t *testing.T) {
	_, mpirun := needMPI(t)
	dir := t.TempDir()
	img := mpiImage(t, dir)
	run := func(t *testing.T, mark string, args ...string) (result, time.Duration) {
		t.Helper()
		argv := []string{"-n", "4", "--oversubscribe"}
		if isRoot() {
			argv = append(argv, "--allow-run-as-root")
		}
		cmd := exec.Command(mpirun, append(argv, args...)...)
		cmd.Env = append(append(os.Environ(), mpiEnv...), mark)
		start := time.Now()
		r := runProcess(t, cmd, 2*time.Minute)
		took := time.Since(start)
		return r, took
	}

	t.Run("mpirun", func(t *testing.T) {
		mark := marker(t)
		r, _ := run(t, mark, launchBin(t), "exec", img, "/opt/hello")
		if r.Code != 0 {
			t.Fatalf("mpirun exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
		}
		checkHello(t, r.Stdout, 4)
		noMPIWarnings(t, r.Stderr)
		noneMarked(t, mark)
	})

	t.Run("mpirun-rank-fails", func(t *testing.T) {
		// Rank 2's container cannot start (its image is missing); the other
		// three wait for it in MPI_Init until mpirun sees the 255 and
		// aborts the job.
		mark := marker(t)
		missing := filepath.Join(dir, "missing.sif")
		r, took := run(t, mark, "sh", "-c", fmt.Sprintf(
			`img=%s; [ "$OMPI_COMM_WORLD_RANK" = 2 ] && img=%s; exec %s exec "$img" /opt/hello`, img, missing, launchBin(t)))
		t.Logf("mpirun ended after %v with status %d", took.Round(time.Millisecond), r.Code)
		if r.Code == 0 {
			t.Errorf("mpirun exited 0 although rank 2 failed")
		}
		if !strings.Contains(r.Stderr, "FATAL:") || !strings.Contains(r.Stderr, missing) {
			t.Errorf("launch's error naming %s is not in mpirun's output:\n%s", missing, r.Stderr)
		}
		noneMarked(t, mark)
	})

	t.Run("slurm", func(t *testing.T) { slurmMPI(t, img) })
}

// slurmMPI is TestMPI's part on the Slurm test cluster.
func slurmMPI(t *testing.T, built string) {
	c := slurm(t)
	dir := c.jobDir(t)
	img := c.image(t, built, dir)
	exports := "export " + strings.Join(mpiEnv, " ") + "\n"

	t.Run("srun-pmix-and-mpirun", func(t *testing.T) {
		script := c.writeScript(t, dir, "mpi.sh", "#!/bin/sh\n"+exports+fmt.Sprintf(`
srun --mpi=pmix launch exec %[1]s /opt/hello > srun.out 2> srun.err
echo "srun=$?" > status.txt
mpirun launch exec %[1]s /opt/hello > mpirun.out 2> mpirun.err
echo "mpirun=$?" >> status.txt
`, img))
		id, code := c.sbatchWait(t, dir, script, "-n", "4", "-t", "5")
		if code != 0 {
			t.Errorf("job %d exit status %d; output:\n%s", id, code, c.output(id))
		}
		if got := readFile(t, dir, "status.txt"); got != "srun=0\nmpirun=0\n" {
			t.Errorf("status.txt %q, want srun=0 and mpirun=0", got)
		}
		for _, how := range []string{"srun", "mpirun"} {
			t.Run(how, func(t *testing.T) {
				checkHello(t, readFile(t, dir, how+".out"), 4)
				noMPIWarnings(t, readFile(t, dir, how+".err"))
			})
		}
	})

	t.Run("cleanenv", func(t *testing.T) {
		// The rule docs/slurm.md states for --cleanenv (issue 4): the
		// variables the job's wire-up needs (SLURM_*, PMIX_*, PMI_*, OMPI_*
		// and the like) survive it; others do not.
		script := c.writeScript(t, dir, "cleanenv.sh", "#!/bin/sh\n"+exports+fmt.Sprintf(`
export LAUNCH_E2E_NOT_KEPT=1
srun -n 2 launch exec --cleanenv %[1]s sh -c 'echo "$SLURM_PROCID $SLURM_JOB_ID ${LAUNCH_E2E_NOT_KEPT:-unset}"' > env.out 2> env.err
srun --mpi=pmix launch exec --cleanenv %[1]s /opt/hello > clean.out 2> clean.err
echo "srun=$?" > clean-status.txt
`, img))
		id, code := c.sbatchWait(t, dir, script, "-n", "4", "-t", "5")
		if code != 0 {
			t.Errorf("job %d exit status %d; output:\n%s", id, code, c.output(id))
		}
		lines := strings.Split(strings.TrimSpace(readFile(t, dir, "env.out")), "\n")
		sort.Strings(lines)
		if want := []string{fmt.Sprintf("0 %d unset", id), fmt.Sprintf("1 %d unset", id)}; strings.Join(lines, "|") != strings.Join(want, "|") {
			t.Errorf("with --cleanenv each rank printed %q, want %q (SLURM_* kept, others dropped)", lines, want)
		}
		if got := readFile(t, dir, "clean-status.txt"); got != "srun=0\n" {
			t.Errorf("srun --mpi=pmix launch exec --cleanenv: %q; stderr:\n%s", got, readFile(t, dir, "clean.err"))
		}
		checkHello(t, readFile(t, dir, "clean.out"), 4)
	})

	t.Run("srun-rank-fails", func(t *testing.T) {
		// Rank 2's container cannot start. Under srun the other ranks wait
		// for it in MPI_Init (PMIx fence) until the job's time limit unless
		// the step is killed when a task fails: srun -K (--kill-on-bad-exit),
		// or KillOnBadExit=1 in slurm.conf (docs/slurm.md). The job's limit
		// (2 minutes) is only a guard.
		missing := filepath.Join(dir, "missing.sif")
		script := c.writeScript(t, dir, "fail.sh", "#!/bin/sh\n"+exports+fmt.Sprintf(`
start=$(date +%%s)
srun -K --mpi=pmix sh -c 'img=%s; [ "$SLURM_PROCID" = 2 ] && img=%s; exec launch exec "$img" /opt/hello' > fail.out 2> fail.err
echo "srun=$? after $(( $(date +%%s) - start ))s" > fail-status.txt
`, img, missing))
		id, _ := c.sbatchWait(t, dir, script, "-n", "4", "-t", "2")
		if st := c.job(t, id)["JobState"]; st != "COMPLETED" {
			t.Errorf("job %d ended %s, want COMPLETED (the script goes on after srun fails)", id, st)
		}
		status := readFile(t, dir, "fail-status.txt")
		t.Logf("%s", strings.TrimSpace(status))
		if strings.HasPrefix(status, "srun=0 ") {
			t.Errorf("srun returned 0 although rank 2 failed; daemon logs:%s", c.logTails())
		}
		errs := readFile(t, dir, "fail.err")
		if !strings.Contains(errs, "FATAL:") || !strings.Contains(errs, missing) {
			t.Errorf("launch's error naming %s is not in srun's stderr:\n%s", missing, errs)
		}
		noneMarked(t, fmt.Sprintf("SLURM_JOB_ID=%d", id))
	})

	t.Run("missing-image", func(t *testing.T) {
		// A job whose image is missing fails at once, with launch's one
		// line in the job's stderr and status 255.
		missing := filepath.Join(dir, "nowhere", "app.sif")
		script := c.writeScript(t, dir, "missing.sh", fmt.Sprintf("#!/bin/sh\nexec launch exec %s /opt/hello\n", missing))
		start := time.Now()
		id, code := c.sbatchWait(t, dir, script, "-e", filepath.Join(dir, "missing-%j.err"))
		t.Logf("job %d ended %v after submission", id, time.Since(start).Round(time.Millisecond))
		if code != 255 {
			t.Errorf("job exit status %d, want 255", code)
		}
		stderr := readFile(t, dir, fmt.Sprintf("missing-%d.err", id))
		wantFatal(t, result{Stderr: stderr, Code: code}, missing, "does not exist")
	})
}
