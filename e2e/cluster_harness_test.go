package e2e

// The multi-node harness: a Slurm cluster of clusterNodes nodes on this one
// machine, made by scripts/cluster (the one place that knows how: network,
// UTS and mount namespaces per node, veths on a private bridge, its own
// munged, slurmctld and one slurmd per node), in a private run directory. It
// is brought up on first use and down by TestMain; if the test binary dies
// instead, the script's watcher (CLUSTER_OWNER) brings it down. Jobs run as
// the unprivileged test user with the job helpers of slurm_jobs_test.go.

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterNodes is the number of nodes of the test cluster.
const clusterNodes = 3

// nodeCluster is a running multi-node test cluster.
type nodeCluster struct {
	*slurmCluster        // dir (the run directory), conf, bin, user: the job helpers work as on one node
	script        string // scripts/cluster
}

var clusterState struct {
	once    sync.Once
	mu      sync.Mutex
	cluster *nodeCluster
	err     error
}

// multiNode returns the running cluster, starting it on first use; not
// root: the test skips (the root pass of scripts/test runs the jobs as the
// unprivileged user).
func multiNode(t *testing.T) *nodeCluster {
	t.Helper()
	if !isRoot() {
		t.Skipf("the multi-node cluster needs root (network namespaces, veths, slurmd); the root pass of scripts/test runs its jobs as the unprivileged user (this is uid %d)", os.Getuid())
	}
	clusterState.once.Do(func() {
		c, err := startCluster(launchBin(t))
		clusterState.mu.Lock()
		clusterState.cluster, clusterState.err = c, err
		clusterState.mu.Unlock()
	})
	if clusterState.err != nil {
		t.Fatalf("multi-node test cluster: %v", clusterState.err)
	}
	return clusterState.cluster
}

// stopCluster brings the cluster down if one was started (TestMain).
func stopCluster() {
	clusterState.mu.Lock()
	c := clusterState.cluster
	clusterState.cluster = nil
	clusterState.mu.Unlock()
	if c != nil {
		_ = c.cmd("down").Run()
	}
}

// clusterScript finds scripts/cluster: in the checkout scripts/test names
// (LAUNCH_E2E_SRC), else beside e2e/ (go test runs in e2e/).
func clusterScript() (string, error) {
	for _, repo := range []string{os.Getenv("LAUNCH_E2E_SRC"), ".."} {
		if repo == "" {
			continue
		}
		p, err := filepath.Abs(filepath.Join(repo, "scripts", "cluster"))
		if err == nil {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("scripts/cluster not found (set LAUNCH_E2E_SRC to the checkout)")
}

// startCluster runs scripts/cluster up in a fresh run directory and puts a
// copy of launch in its bin/.
func startCluster(launch string) (c *nodeCluster, err error) {
	script, err := clusterScript()
	if err != nil {
		return nil, err
	}
	uname := os.Getenv("LAUNCH_E2E_USER")
	if uname == "" {
		uname = "launchtest"
	}
	u, err := user.Lookup(uname)
	if err != nil {
		return nil, fmt.Errorf("the job user %s does not exist (scripts/test creates it; or set LAUNCH_E2E_USER): %w", uname, err)
	}
	dir, err := os.MkdirTemp(sharedBase(), "launch-e2e-cluster.")
	if err != nil {
		return nil, fmt.Errorf("making the cluster directory: %w", err)
	}
	sc := &slurmCluster{dir: dir, conf: filepath.Join(dir, "slurm.conf"), bin: filepath.Join(dir, "bin"), user: u, node: "node1"}
	sc.uid, _ = strconv.Atoi(u.Uid)
	sc.gid, _ = strconv.Atoi(u.Gid)
	c = &nodeCluster{slurmCluster: sc, script: script}
	up := c.cmd("up")
	up.Env = append(up.Env, fmt.Sprintf("NODES=%d", clusterNodes), fmt.Sprintf("CLUSTER_OWNER=%d", os.Getpid()))
	if out, err := up.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s up: %v\n%s", script, err, out)
	}
	if err := copyFile(launch, filepath.Join(c.bin, "launch"), 0o755); err != nil {
		_ = c.cmd("down").Run()
		return nil, fmt.Errorf("copying the launch binary for the jobs: %w", err)
	}
	return c, nil
}

// cmd is scripts/cluster with args, for this cluster.
func (c *nodeCluster) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.script, args...)
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+c.dir)
	return cmd
}

// holder is the pid of the process that keeps node i's namespaces.
func (c *nodeCluster) holder(t *testing.T, i int) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "nodes", fmt.Sprintf("node%d", i), "holder.pid"))
	if err != nil {
		t.Fatalf("node%d: %v", i, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("node%d's holder.pid: %v", i, err)
	}
	return pid
}

// slurmd is node i's slurmd pid (0 if it has none running).
func (c *nodeCluster) slurmd(i int) int {
	data, _ := os.ReadFile(filepath.Join(c.dir, "nodes", fmt.Sprintf("node%d", i), "slurmd.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// onNode lists the processes in node i's network namespace, pid → command
// line, but the node's own (its holder and slurmd).
func (c *nodeCluster) onNode(t *testing.T, i int) map[int]string {
	t.Helper()
	holder := c.holder(t, i)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", holder))
	if err != nil {
		t.Fatalf("node%d's namespaces are gone: %v", i, err)
	}
	slurmd := c.slurmd(i)
	procs := map[int]string{}
	for pid, p := range readProcs() {
		if pid == holder || pid == slurmd || p.Zombie() {
			continue
		}
		if n, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); n == ns {
			procs[pid] = p.Cmdline
		}
	}
	return procs
}

// squashfuses counts the squashfuse servers running on node i.
func (c *nodeCluster) squashfuses(t *testing.T, i int) int {
	t.Helper()
	n := 0
	for _, cl := range c.onNode(t, i) {
		if isImageServer(cl) {
			n++
		}
	}
	return n
}

// shareSockets lists launch's abstract share sockets in node i's network
// namespace (its /proc/net/unix: abstract names are per namespace).
func (c *nodeCluster) shareSockets(t *testing.T, i int) []string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", c.holder(t, i)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 8 && strings.HasPrefix(f[7], "@launch/share/") {
			names = append(names, f[7])
		}
	}
	return names
}

// nodesClean waits (up to KillWait and a margin) until no node runs any
// process of a job, no share socket is left in any node's network namespace
// and nothing below dir is mounted in any node's mount namespace or the host's.
func (c *nodeCluster) nodesClean(t *testing.T, dir string, nodes ...int) {
	t.Helper()
	if len(nodes) == 0 {
		for i := 1; i <= clusterNodes; i++ {
			nodes = append(nodes, i)
		}
	}
	var left []string
	err := waitUntil(slurmKillWait+5*time.Second, func() bool {
		left = left[:0]
		for _, i := range nodes {
			for pid, cl := range c.onNode(t, i) {
				left = append(left, fmt.Sprintf("node%d: process %d %s", i, pid, cl))
			}
			for _, s := range c.shareSockets(t, i) {
				left = append(left, fmt.Sprintf("node%d: share socket %s", i, s))
			}
			mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.holder(t, i)))
			for _, l := range strings.Split(string(mi), "\n") {
				if strings.Contains(l, dir) {
					left = append(left, fmt.Sprintf("node%d: mount %s", i, l))
				}
			}
		}
		return len(left) == 0
	})
	if err != nil {
		t.Errorf("left on the nodes: %s", strings.Join(left, "\n  "))
	}
	noHostMounts(t, dir)
}

// waitNodesIdle waits until every node is idle again (after a test that
// killed one).
func (c *nodeCluster) waitNodesIdle(t *testing.T, timeout time.Duration) {
	t.Helper()
	var states string
	if err := waitUntil(timeout, func() bool {
		out, _ := c.root("sinfo", "-h", "-N", "-o", "%N=%t").Output()
		states = strings.Join(strings.Fields(string(out)), " ")
		return strings.Count(states, "=idle") == clusterNodes
	}); err != nil {
		t.Fatalf("nodes not idle after %v: %s", timeout, states)
	}
}
