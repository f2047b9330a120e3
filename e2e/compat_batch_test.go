package e2e

// An Apptainer batch script, unchanged, run by launch under Slurm: the
// promise "swap the binary and your batch scripts work", as a site would
// keep it (an `apptainer` on the job's PATH that is launch).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// apptainerScript is a job script as an Apptainer user writes it: it sets
// APPTAINERENV_ and APPTAINER_BIND, tests $APPTAINER_CONTAINER inside, and
// asks for --nv only where nvidia-smi exists. SITE is where the site's
// `apptainer` is (what `module load apptainer` would put on PATH), IMG the
// image.
const apptainerScript = `#!/bin/bash
#SBATCH --job-name=apptainer-compat
#SBATCH --ntasks=2
set -u
export PATH=%[1]s:$PATH
IMG=%[2]s

export APPTAINERENV_FOO="bar baz"
export APPTAINER_BIND="$PWD/data:/data:ro"
GPU=""
if command -v nvidia-smi >/dev/null 2>&1; then GPU="--nv"; fi

apptainer --version > version.txt || exit 11
test -z "${APPTAINER_CONTAINER:-}" && echo "host: not in a container" > host.txt

apptainer exec $GPU "$IMG" /bin/sh -c '
  if [ -n "$APPTAINER_CONTAINER" ]; then echo "inside $(basename "$APPTAINER_CONTAINER")"; fi
  echo "name=$APPTAINER_NAME"
  echo "FOO=$FOO"
  cat /data/input.txt
  if touch /data/x 2>/dev/null; then echo "bind is writable"; else echo "bind is read-only"; fi
' > out.txt
echo "exec=$?" >> out.txt

srun apptainer exec "$IMG" /bin/sh -c 'echo "task $SLURM_PROCID FOO=$FOO in $(basename "$APPTAINER_CONTAINER")"' | sort > srun.txt
echo "srun=${PIPESTATUS[0]}" >> out.txt

apptainer run "$IMG" first second > run.txt
echo "run=$?" >> out.txt
`

// TestCompatApptainerBatchScript runs apptainerScript under Slurm with an
// `apptainer` that is a symbolic link to launch: every line of it must do
// what it does with Apptainer.
func TestCompatApptainerBatchScript(t *testing.T) {
	c := slurm(t)
	dir := c.jobDir(t)
	tree := busyboxTree(t)
	rs := "#!/bin/sh\necho \"runscript: $*\"\n"
	if err := os.MkdirAll(filepath.Join(tree, ".singularity.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, ".singularity.d", "runscript"), []byte(rs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tree, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := c.image(t, buildSIF(t, tree), dir)
	// The site's apptainer: a link to the launch under test.
	site := filepath.Join(dir, "site-bin")
	if err := os.Mkdir(site, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(c.bin, "launch"), filepath.Join(site, "apptainer")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "input.txt"), []byte("input data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{data, filepath.Join(data, "input.txt")} {
		if err := os.Chown(p, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
	}
	script := c.writeScript(t, dir, "job.sh", fmt.Sprintf(apptainerScript, site, img))
	id, code := c.sbatchWait(t, dir, script)
	out := c.output(id)
	if code != 0 {
		t.Fatalf("job exit status %d, want 0; job output:\n%s", code, out)
	}
	if v := readFile(t, dir, "version.txt"); !strings.Contains(v, "version") {
		t.Errorf("apptainer --version printed %q", v)
	}
	if h := readFile(t, dir, "host.txt"); h != "host: not in a container\n" {
		t.Errorf("host.txt %q", h)
	}
	base := filepath.Base(img)
	want := "inside " + base + "\nname=" + base + "\nFOO=bar baz\ninput data\nbind is read-only\nexec=0\nsrun=0\nrun=0\n"
	if got := readFile(t, dir, "out.txt"); got != want {
		t.Errorf("out.txt:\n%s\nwant:\n%s\njob output:\n%s", got, want, out)
	}
	if got, want := readFile(t, dir, "srun.txt"), "task 0 FOO=bar baz in "+base+"\ntask 1 FOO=bar baz in "+base+"\n"; got != want {
		t.Errorf("srun.txt %q, want %q", got, want)
	}
	if got := readFile(t, dir, "run.txt"); got != "runscript: first second\n" {
		t.Errorf("run.txt %q", got)
	}
	if _, err := os.Stat(filepath.Join(data, "x")); err == nil {
		t.Error("the :ro bind from APPTAINER_BIND was writable")
	}
}
