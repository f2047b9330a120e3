package e2e

// Jobs across the nodes of the multi-node test cluster (cluster_harness_test.go,
// scripts/cluster): `launch exec` on every node of a job, OpenMPI between
// containers on different nodes over TCP, the per-node sharing of one image
// mount, scancel and a node that dies, and a job array spread over the nodes.
// Root only (the cluster needs it); the jobs run as the unprivileged test user.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterMPIEnv: ranks on one node talk through shared memory (vader, without
// CMA, which OpenMPI refuses across the containers' user namespaces), ranks on
// different nodes through TCP over the nodes' eth0 (docs/slurm.md).
var clusterMPIEnv = []string{
	"OMPI_MCA_pml=ob1",
	"OMPI_MCA_btl=self,vader,tcp",
	"OMPI_MCA_btl_vader_single_copy_mechanism=none",
	"OMPI_MCA_btl_tcp_if_include=eth0",
	"OMPI_MCA_oob_tcp_if_include=eth0",
}

// perNode is the ranks per node of the tests' steps: ranks 2i and 2i+1
// run on node i+1 (Slurm's block distribution).
const perNode = 2

// clusterImage is a busybox SIF with /etc/marker ("from-the-image") in dir,
// readable by the job user.
func clusterImage(t *testing.T, c *nodeCluster, dir string) string {
	t.Helper()
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "marker"), []byte("from-the-image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c.image(t, buildSIF(t, tree), dir)
}

// homeDir makes a fresh directory in the job user's home (shared by all
// nodes, as on a cluster), owned by the user, removed after the test.
func (c *nodeCluster) homeDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(c.user.HomeDir, "launch-e2e-cluster.")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, c.uid, c.gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// waitFiles waits until dir holds name-0 … name-(n-1).
func waitFiles(t *testing.T, c *nodeCluster, id int, dir, name string, n int) {
	t.Helper()
	if err := waitUntil(time.Minute, func() bool {
		for r := 0; r < n; r++ {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s-%d", name, r))); err != nil {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("the %d ranks did not all start: %v; job output:\n%s", n, err, c.output(id))
	}
}

// TestClusterExec: `sbatch -N 3` with `srun launch exec` starts two
// containers on each node; each rank sees its node's hostname and
// SLURM_NODEID and runs as the user, writing its result to the user's
// (shared) home; the two ranks of a node read the image through one mount
// (one device number), different nodes through different ones.
func TestClusterExec(t *testing.T) {
	c := multiNode(t)
	dir := c.jobDir(t)
	img := clusterImage(t, c, dir)
	home := c.homeDir(t)
	n := clusterNodes * perNode
	// Each rank waits (up to 30 s) until all have written, so that all the
	// mounts exist at once: a FUSE mount's device number is unique only
	// among the mounts that exist together, and is reused after one ends.
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
srun launch exec %s sh -c 'echo "$(hostname) $SLURM_NODEID $(id -u) $(stat -c %%d /etc/marker) $(cat /etc/marker)" > %s/rank-$SLURM_PROCID; i=0; while [ $(ls %s | grep -c "^rank-") -lt %d ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done'
echo "srun=$?" > status.txt
`, img, home, home, n))
	id, code := c.sbatchWait(t, dir, script, "-N", strconv.Itoa(clusterNodes), "--ntasks-per-node="+strconv.Itoa(perNode))
	if code != 0 || readFile(t, dir, "status.txt") != "srun=0\n" {
		t.Fatalf("job %d: exit %d, %q; output:\n%s", id, code, readFile(t, dir, "status.txt"), c.output(id))
	}
	devs := map[int]string{} // node → the image's device number seen there
	for r := 0; r < n; r++ {
		name := fmt.Sprintf("rank-%d", r)
		f := strings.Fields(readFile(t, home, name))
		node := r/perNode + 1
		want := []string{fmt.Sprintf("node%d", node), strconv.Itoa(node - 1), strconv.Itoa(c.uid)}
		if len(f) != 5 || strings.Join(f[:3], " ") != strings.Join(want, " ") || f[4] != "from-the-image" {
			t.Errorf("rank %d wrote %q, want %q, a device number and from-the-image", r, f, want)
			continue
		}
		fileOwnedBy(t, filepath.Join(home, name), c.uid, c.gid)
		if d, ok := devs[node]; ok && d != f[3] {
			t.Errorf("the ranks on node%d read the image from different mounts (devices %s and %s): not shared on the node", node, d, f[3])
		}
		devs[node] = f[3]
	}
	seen := map[string]int{}
	for node, d := range devs {
		if other, ok := seen[d]; ok {
			t.Errorf("node%d and node%d read the image through the same mount (device %s)", other, node, d)
		}
		seen[d] = node
	}
	c.nodesClean(t, dir)
}

// TestClusterShare: while a step of two ranks per node runs, each node has
// exactly one squashfuse server and one share rendezvous; the rendezvous
// has the same abstract name on every node (same user, image and step), and
// yet no node uses another's mount, abstract sockets being per network
// namespace. After the step nothing is left on any node.
func TestClusterShare(t *testing.T) {
	c := multiNode(t)
	dir := c.jobDir(t)
	img := clusterImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
srun launch exec %s sh -c 'touch ready-$SLURM_PROCID; while [ ! -e go ]; do sleep 0.05; done'
echo "srun=$?" > status.txt
`, img))
	n := clusterNodes * perNode
	id := c.sbatch(t, dir, script, "-N", strconv.Itoa(clusterNodes), "--ntasks-per-node="+strconv.Itoa(perNode))
	waitFiles(t, c, id, dir, "ready", n)
	names := map[string]bool{}
	for i := 1; i <= clusterNodes; i++ {
		if got := c.squashfuses(t, i); got != 1 {
			t.Errorf("node%d runs %d squashfuse servers for its %d ranks, want 1", i, got, perNode)
		}
		socks := map[string]bool{}
		for _, s := range c.shareSockets(t, i) {
			socks[s] = true
			names[s] = true
		}
		if len(socks) != 1 {
			t.Errorf("node%d has share sockets %v, want one name", i, socks)
		}
	}
	if len(names) != 1 {
		t.Errorf("the nodes' share names differ (%v): the test does not show that the network namespace alone keeps them apart", names)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.waitJobState(t, id, time.Minute, "COMPLETED", "FAILED", "CANCELLED")
	if got := readFile(t, dir, "status.txt"); got != "srun=0\n" {
		t.Errorf("status.txt %q, want srun=0; output:\n%s", got, c.output(id))
	}
	c.nodesClean(t, dir)
}

// TestClusterMPI: the MPI image's ring and reduction across 6 ranks on 3
// nodes, started by `srun --mpi=pmix` and by `mpirun` in the batch script:
// every rank reports, the sum is right, and the ring's 4 MiB messages
// between nodes crossed each node's veth.
func TestClusterMPI(t *testing.T) {
	c := multiNode(t)
	dir := c.jobDir(t)
	img := c.image(t, mpiImage(t, t.TempDir()), dir)
	script := c.writeScript(t, dir, "mpi.sh", "#!/bin/sh\nexport "+strings.Join(clusterMPIEnv, " ")+fmt.Sprintf(`
srun --mpi=pmix launch exec %[1]s /opt/hello > srun.out 2> srun.err
echo "srun=$?" > status.txt
mpirun launch exec %[1]s /opt/hello > mpirun.out 2> mpirun.err
echo "mpirun=$?" >> status.txt
`, img))
	before := c.vethBytes(t)
	id, code := c.sbatchWait(t, dir, script, "-N", strconv.Itoa(clusterNodes), "--ntasks-per-node="+strconv.Itoa(perNode), "-t", "5")
	if code != 0 {
		t.Errorf("job %d exit status %d; output:\n%s", id, code, c.output(id))
	}
	if got := readFile(t, dir, "status.txt"); got != "srun=0\nmpirun=0\n" {
		t.Errorf("status.txt %q, want srun=0 and mpirun=0\nsrun: %s\nmpirun: %s", got, readFile(t, dir, "srun.err"), readFile(t, dir, "mpirun.err"))
	}
	for _, how := range []string{"srun", "mpirun"} {
		t.Run(how, func(t *testing.T) {
			checkHello(t, readFile(t, dir, how+".out"), clusterNodes*perNode)
			noMPIWarnings(t, readFile(t, dir, how+".err"))
		})
	}
	after := c.vethBytes(t)
	for i := 1; i <= clusterNodes; i++ {
		// Two runs, each sending 4 MiB from every node to the next.
		if got := after[i] - before[i]; got < 2*4<<20 {
			t.Errorf("node%d's veth carried %d bytes during the job, want at least 8 MiB (the ring's messages to and from the other nodes)", i, got)
		}
	}
	c.nodesClean(t, dir)
}

// vethBytes is what each node's veth has received (its host end's tx and rx,
// i.e. both directions), by node.
func (c *nodeCluster) vethBytes(t *testing.T) map[int]int64 {
	t.Helper()
	var bridge string
	for _, l := range strings.Split(readFile(t, c.dir, "state.env"), "\n") {
		if v, ok := strings.CutPrefix(l, "BRIDGE="); ok {
			bridge = v
		}
	}
	m := map[int]int64{}
	for i := 1; i <= clusterNodes; i++ {
		for _, dir := range []string{"tx_bytes", "rx_bytes"} {
			data, err := os.ReadFile(fmt.Sprintf("/sys/class/net/%s-%d/statistics/%s", bridge, i, dir))
			if err != nil {
				t.Fatalf("node%d's veth: %v", i, err)
			}
			v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			m[i] += v
		}
	}
	return m
}

// TestClusterScancel: scancel of a running step of two ranks per node on
// three nodes (JOB.0), and of the batch job, leaves nothing on any node: no
// process of the job, no share socket, no mount.
func TestClusterScancel(t *testing.T) {
	c := multiNode(t)
	for _, tc := range []struct{ name, target, state string }{
		{"step", ".0", "COMPLETED"},
		{"job", "", "CANCELLED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := c.jobDir(t)
			img := clusterImage(t, c, dir)
			script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
srun launch exec %s sh -c 'sleep 2001 & touch ready-$SLURM_PROCID; exec sleep 1000'
echo "srun=$?" > after.txt
`, img))
			id := c.sbatch(t, dir, script, "-N", strconv.Itoa(clusterNodes), "--ntasks-per-node="+strconv.Itoa(perNode))
			waitFiles(t, c, id, dir, "ready", clusterNodes*perNode)
			for i := 1; i <= clusterNodes; i++ {
				if got := c.squashfuses(t, i); got != 1 {
					t.Errorf("node%d runs %d squashfuse servers, want 1", i, got)
				}
			}
			target := strconv.Itoa(id) + tc.target
			start := time.Now()
			if out, err := c.asUser(t.Context(), dir, nil, "scancel", target).CombinedOutput(); err != nil {
				t.Fatalf("scancel %s: %v: %s", target, err, out)
			}
			if st := c.waitJobState(t, id, 30*time.Second, "CANCELLED", "COMPLETED", "FAILED"); st != tc.state {
				t.Errorf("job %d ended %s, want %s", id, st, tc.state)
			}
			c.nodesClean(t, dir)
			t.Logf("all nodes clean %v after scancel %s", time.Since(start).Round(time.Millisecond), target)
			if tc.target != "" && readFile(t, dir, "after.txt") == "srun=0\n" {
				t.Errorf("srun of the cancelled step returned 0")
			}
		})
	}
}

// TestClusterArray: a job array of 6 tasks, one node each (--exclusive), runs
// on all three nodes, every task's container succeeding.
func TestClusterArray(t *testing.T) {
	c := multiNode(t)
	dir := c.jobDir(t)
	img := clusterImage(t, c, dir)
	script := c.writeScript(t, dir, "array.sh", fmt.Sprintf(`#!/bin/sh
launch exec %s sh -c 'echo "$SLURM_ARRAY_TASK_ID $(hostname)"' > task-$SLURM_ARRAY_TASK_ID.txt
sleep 1
`, img))
	const n = 6
	id, _ := c.sbatchWait(t, dir, script, fmt.Sprintf("--array=0-%d", n-1), "--exclusive", "-N", "1", "-o", filepath.Join(dir, "slurm-%A_%a.out"))
	hosts := map[string]bool{}
	for i := 0; i < n; i++ {
		f := strings.Fields(readFile(t, dir, fmt.Sprintf("task-%d.txt", i)))
		if len(f) != 2 || f[0] != strconv.Itoa(i) || !strings.HasPrefix(f[1], "node") {
			t.Errorf("task %d wrote %q, want \"%d nodeN\"", i, f, i)
			continue
		}
		hosts[f[1]] = true
	}
	if len(hosts) != clusterNodes {
		t.Errorf("the array ran on %v, want all %d nodes", hosts, clusterNodes)
	}
	for _, rec := range c.jobs(t, id) {
		if rec["JobState"] != "COMPLETED" || rec["ExitCode"] != "0:0" {
			t.Errorf("array task %s_%s on %s: JobState=%s ExitCode=%s, want COMPLETED 0:0",
				rec["ArrayJobId"], rec["ArrayTaskId"], rec["NodeList"], rec["JobState"], rec["ExitCode"])
		}
	}
	c.nodesClean(t, dir)
}

// TestClusterNodeKilled: node3 dies (its slurmd and every process on it,
// SIGKILL) while a step runs two ranks on each node; slurmctld declares it
// DOWN (SlurmdTimeout) and ends the job (NODE_FAIL, --no-requeue), and the
// two other nodes are left clean. Then node3 comes back. Last in the file:
// it takes about SlurmdTimeout.
func TestClusterNodeKilled(t *testing.T) {
	c := multiNode(t)
	dir := c.jobDir(t)
	img := clusterImage(t, c, dir)
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(`#!/bin/sh
srun launch exec %s sh -c 'touch ready-$SLURM_PROCID; exec sleep 1000'
`, img))
	id := c.sbatch(t, dir, script, "--no-requeue", "-N", strconv.Itoa(clusterNodes), "--ntasks-per-node="+strconv.Itoa(perNode))
	waitFiles(t, c, id, dir, "ready", clusterNodes*perNode)
	t.Cleanup(func() {
		_ = c.cmd("start-node", strconv.Itoa(clusterNodes)).Run()
		c.waitNodesIdle(t, time.Minute)
	})
	if out, err := c.cmd("kill-node", strconv.Itoa(clusterNodes)).CombinedOutput(); err != nil {
		t.Fatalf("scripts/cluster kill-node: %v: %s", err, out)
	}
	if left := c.onNode(t, clusterNodes); len(left) != 0 {
		t.Fatalf("node%d still runs %v after kill-node", clusterNodes, left)
	}
	start := time.Now()
	if st := c.waitJobState(t, id, time.Minute, "NODE_FAIL", "FAILED", "CANCELLED", "COMPLETED"); st != "NODE_FAIL" {
		t.Errorf("job %d ended %s, want NODE_FAIL", id, st)
	}
	t.Logf("job ended %v after the node died", time.Since(start).Round(time.Millisecond))
	c.nodesClean(t, dir, 1, 2)
}
