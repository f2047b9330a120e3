package e2e

// The Slurm harness: a single-node Slurm (munged, slurmctld, slurmd; no
// systemd) brought up on first use by a test that needs it, in one private
// directory with its own config, munge key and socket, state, spool, logs and
// TCP ports, so that it touches nothing of the machine's own Slurm or munge
// and several suites can run at once. It needs root (the daemons run as
// root); jobs run as the unprivileged test user (LAUNCH_E2E_USER, which
// scripts/test sets to its LAUNCH_TEST_USER; default launchtest). TestMain
// stops it; if the test binary dies instead (a panic, a -test.timeout), the
// daemons get SIGTERM from their parent-death signal.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slurmKillWait is the cluster's KillWait: seconds between the SIGTERM and
// the SIGKILL of a cancelled job.
const slurmKillWait = 5 * time.Second

// slurmNodeCPUs is the CPU count the node claims (SlurmdParameters=
// config_overrides), more than a CI machine has, so that -n 4 steps and a
// 20-task array fit without --overcommit.
const slurmNodeCPUs = 32

// userPATH is the PATH jobs get (the launch under test comes first).
const userPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// slurmCluster is a running single-node Slurm.
type slurmCluster struct {
	dir     string     // everything lives below; traversable by the job user
	conf    string     // slurm.conf
	bin     string     // directory holding a copy of the launch under test
	user    *user.User // who jobs run as
	uid     int
	gid     int
	node    string
	daemons []*exec.Cmd // in start order
}

// slurmState is the harness's one instance: started once, on first use, by
// whichever test needs it first, and stopped by TestMain.
var slurmState struct {
	once    sync.Once
	mu      sync.Mutex
	cluster *slurmCluster
	err     error
}

// slurm returns the running cluster, starting it on first use. Not root: the
// test skips (the root pass of scripts/test runs the jobs as the unprivileged
// user). Root without Slurm installed, or a cluster that does not come up:
// the test fails.
func slurm(t *testing.T) *slurmCluster {
	t.Helper()
	if !isRoot() {
		t.Skipf("Slurm tests need root to start slurmctld/slurmd; the root pass of scripts/test runs their jobs as the unprivileged user (this is uid %d)", os.Getuid())
	}
	slurmState.once.Do(func() {
		c, err := startSlurm(launchBin(t))
		slurmState.mu.Lock()
		slurmState.cluster, slurmState.err = c, err
		slurmState.mu.Unlock()
	})
	if slurmState.err != nil {
		t.Fatalf("Slurm test cluster: %v", slurmState.err)
	}
	return slurmState.cluster
}

// stopSlurm stops the cluster if one was started (TestMain calls it).
func stopSlurm() {
	slurmState.mu.Lock()
	c := slurmState.cluster
	slurmState.cluster = nil
	slurmState.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// slurmTools are the programs the harness and the tests run.
var slurmTools = []string{"munged", "munge", "slurmctld", "slurmd", "sbatch", "srun", "salloc", "scancel", "scontrol", "sinfo", "squeue"}

// lookTool finds a Slurm/munge program in PATH or the sbin directories.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: Slurm and munge must be installed for the e2e suite (run scripts/install-deps as root)", name)
}

// sharedBase returns a directory in which to make a directory the job user
// can reach: the nearest ancestor of the temp dir (scripts/test gives the
// root run a private 0700 one inside its world-readable run directory) that
// everyone may traverse.
func sharedBase() string {
	d := filepath.Clean(os.TempDir())
	for {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && fi.Mode().Perm()&0o001 != 0 {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "/tmp"
		}
		d = parent
	}
}

// startSlurm brings up munged, slurmctld and slurmd in a fresh directory and
// waits for the node to be idle.
func startSlurm(launch string) (c *slurmCluster, err error) {
	tools := map[string]string{}
	for _, name := range slurmTools {
		p, err := lookTool(name)
		if err != nil {
			return nil, err
		}
		tools[name] = p
	}
	uname := os.Getenv("LAUNCH_E2E_USER") // scripts/test sets it to its LAUNCH_TEST_USER
	if uname == "" {
		uname = "launchtest"
	}
	u, err := user.Lookup(uname)
	if err != nil {
		return nil, fmt.Errorf("the job user %s does not exist (scripts/test creates it; or set LAUNCH_E2E_USER): %w", uname, err)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	c = &slurmCluster{user: u, node: strings.SplitN(host, ".", 2)[0]}
	c.uid, _ = strconv.Atoi(u.Uid)
	c.gid, _ = strconv.Atoi(u.Gid)

	dir, err := os.MkdirTemp(sharedBase(), "launch-e2e-slurm.")
	if err != nil {
		return nil, fmt.Errorf("making the cluster directory: %w", err)
	}
	c.dir = dir
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, c.logTails())
			c.stop()
			c = nil
		}
	}()
	for _, d := range []string{"", "munge", "state", "spool", "log", "bin", "jobs", "pmix"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return c, err
		}
		if err := os.Chmod(filepath.Join(dir, d), 0o755); err != nil {
			return c, err
		}
	}
	// Jobs find `launch` in PATH, as on a cluster.
	c.bin = filepath.Join(dir, "bin")
	if err := copyFile(launch, filepath.Join(c.bin, "launch"), 0o755); err != nil {
		return c, fmt.Errorf("copying the launch binary for the jobs: %w", err)
	}

	key := make([]byte, 1024)
	if _, err := rand.Read(key); err != nil {
		return c, err
	}
	keyFile := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		return c, err
	}
	socket := filepath.Join(dir, "munge", "munge.socket")
	ports, err := freePorts(2)
	if err != nil {
		return c, err
	}
	c.conf = filepath.Join(dir, "slurm.conf")
	if err := os.WriteFile(c.conf, []byte(c.config(socket, ports)), 0o644); err != nil {
		return c, err
	}
	// slurmstepd's PMIx plugin makes its base/spmix_appdir_UID_JOB.STEP
	// for each step (the base defaults to /tmp) and does not always remove
	// it when a step is killed (srun -K after a failing rank). Job IDs start
	// at 1 in every cluster this harness makes, so a directory left by an
	// earlier cluster failed a later step with the same IDs ("File exists",
	// every task "launch failed", srun 0). Each cluster gets its own base,
	// removed with the cluster.
	mpiConf := "PMIxCliTmpDirBase=" + filepath.Join(dir, "pmix") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "mpi.conf"), []byte(mpiConf), 0o644); err != nil {
		return c, err
	}

	if err := c.startDaemon(filepath.Join(dir, "log", "munged.out"), tools["munged"], "-F", "--force",
		"--socket="+socket, "--key-file="+keyFile,
		"--log-file="+filepath.Join(dir, "log", "munged.log"),
		"--pid-file="+filepath.Join(dir, "munge", "munged.pid"),
		"--seed-file="+filepath.Join(dir, "munge", "munged.seed")); err != nil {
		return c, err
	}
	if err := waitUntil(10*time.Second, func() bool {
		return exec.Command(tools["munge"], "-S", socket, "-n", "--output=/dev/null").Run() == nil
	}); err != nil {
		return c, fmt.Errorf("munged did not answer on %s: %w", socket, err)
	}
	if err := c.startDaemon(filepath.Join(dir, "log", "slurmctld.out"), tools["slurmctld"], "-D", "-i", "-f", c.conf); err != nil {
		return c, err
	}
	if err := c.startDaemon(filepath.Join(dir, "log", "slurmd.out"), tools["slurmd"], "-D", "-N", c.node, "-f", c.conf); err != nil {
		return c, err
	}
	var state string
	if err := waitUntil(60*time.Second, func() bool {
		out, _ := c.root("sinfo", "-h", "-N", "-o", "%t").Output()
		state = strings.TrimSpace(string(out))
		return state == "idle"
	}); err != nil {
		return c, fmt.Errorf("node %s did not become idle (state %q): %w", c.node, state, err)
	}
	return c, nil
}

// config is slurm.conf for a node that runs everything locally, with the
// same plugins a small real cluster would use.
func (c *slurmCluster) config(mungeSocket string, ports []int) string {
	d := c.dir
	kv := [][2]string{
		{"ClusterName", "launche2e"},
		{"SlurmctldHost", c.node + "(127.0.0.1)"}, // no name resolution needed
		{"SlurmctldPort", strconv.Itoa(ports[0])},
		{"SlurmdPort", strconv.Itoa(ports[1])},
		{"SlurmUser", "root"},
		{"AuthType", "auth/munge"},
		{"CredType", "cred/munge"},
		{"AuthInfo", "socket=" + mungeSocket},
		{"StateSaveLocation", filepath.Join(d, "state")},
		{"SlurmdSpoolDir", filepath.Join(d, "spool")},
		{"SlurmctldPidFile", filepath.Join(d, "slurmctld.pid")},
		{"SlurmdPidFile", filepath.Join(d, "slurmd.pid")},
		{"SlurmctldLogFile", filepath.Join(d, "log", "slurmctld.log")},
		{"SlurmdLogFile", filepath.Join(d, "log", "slurmd.log")},
		{"ProctrackType", "proctrack/linuxproc"},
		{"TaskPlugin", "task/none"},
		{"SelectType", "select/cons_tres"},
		{"SelectTypeParameters", "CR_Core"},
		{"SlurmdParameters", "config_overrides"},
		{"MpiDefault", "none"},
		{"ReturnToService", "2"},
		{"MailProg", "/bin/true"},
		{"KillWait", strconv.Itoa(int(slurmKillWait / time.Second))},
		{"InactiveLimit", "0"},
		{"MinJobAge", "600"},
		{"JobAcctGatherType", "jobacct_gather/none"},
		{"AccountingStorageType", "accounting_storage/none"},
		{"NodeName", fmt.Sprintf("%s NodeAddr=127.0.0.1 CPUs=%d Boards=1 SocketsPerBoard=1 CoresPerSocket=%d ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN",
			c.node, slurmNodeCPUs, slurmNodeCPUs)},
		{"PartitionName", fmt.Sprintf("debug Nodes=%s Default=YES MaxTime=INFINITE State=UP", c.node)},
	}
	var b strings.Builder
	b.WriteString("# slurm.conf written by the launch e2e harness (e2e/slurm_harness_test.go)\n")
	for _, p := range kv {
		fmt.Fprintf(&b, "%s=%s\n", p[0], p[1])
	}
	return b.String()
}

// spawner starts the daemons from one OS thread that lives as long as the
// test binary, so that their parent-death signal fires only when the binary
// itself dies (it is tied to the thread, not the process).
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread must not be reused or end
		for f := range ch {
			f()
		}
	}()
	return ch
})

// startDaemon starts a daemon in the foreground, its output in logFile.
func (c *slurmCluster) startDaemon(logFile, prog string, args ...string) error {
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(prog, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	errc := make(chan error)
	spawner() <- func() { errc <- cmd.Start() }
	if err := <-errc; err != nil {
		return fmt.Errorf("starting %s: %w", prog, err)
	}
	c.daemons = append(c.daemons, cmd)
	go func() { _ = cmd.Wait() }()
	return nil
}

// stop cancels what is left of the jobs, stops the daemons (slurmd,
// slurmctld, munged) and removes the directory.
func (c *slurmCluster) stop() {
	if len(c.daemons) >= 3 {
		_ = c.root("scancel", "--full", "-u", c.user.Username).Run()
		_ = waitUntil(2*slurmKillWait+5*time.Second, func() bool {
			out, err := c.root("squeue", "-h", "-o", "%i").Output()
			return err == nil && len(bytes.TrimSpace(out)) == 0
		})
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		d := c.daemons[i]
		_ = d.Process.Signal(syscall.SIGTERM)
		if waitUntil(15*time.Second, func() bool { return syscall.Kill(d.Process.Pid, 0) != nil }) != nil {
			_ = d.Process.Kill()
		}
	}
	if c.dir != "" && os.Getenv("LAUNCH_E2E_KEEP_SLURM") == "" {
		_ = os.RemoveAll(c.dir)
	}
}

// logTails is the end of every daemon log, for error messages.
func (c *slurmCluster) logTails() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.dir, "log", "*"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		fmt.Fprintf(&b, "\n--- %s:\n%s", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// root is a Slurm command run as root against this cluster.
func (c *slurmCluster) root(prog string, args ...string) *exec.Cmd {
	p, err := lookTool(prog)
	if err != nil {
		p = prog
	}
	cmd := exec.Command(p, args...)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf)
	return cmd
}
