package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/launch-hpc/launch/internal/testregistry"
)

// TestExecOCISource: exec, run and shell take docker:// and oci: sources
// as Apptainer does: the image is converted into the cache once (keyed by
// its manifest digest) and the cached SIF is run. A second run by tag
// asks the registry for the manifest only (no layer is fetched: "Using
// cached SIF"), and a run pinned by digest whose SIF is cached does not
// contact the registry at all (it works with the registry stopped).
func TestExecOCISource(t *testing.T) {
	reg, err := testregistry.Real(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	src := busyboxOCI(t)
	tagged := (&registry{Host: reg.Host}).push(t, "test/busybox:v1", src)
	d, err := src.Digest()
	if err != nil {
		t.Fatal(err)
	}
	pinned := reg.Host + "/test/busybox@" + d.String()
	e := newOCIEnv(t)
	run := func(args ...string) result {
		t.Helper()
		return launchWith(t, runOpts{Env: e.env(), Timeout: 3 * time.Minute}, args...)
	}

	r := run("exec", "--nohttps", "docker://"+tagged, "cat", "/etc/layer2")
	if wantOK(t, r); r.Stdout != "from layer 2\n" {
		t.Errorf("exec docker://: stdout %q", r.Stdout)
	}
	r = run("cache", "list")
	if wantOK(t, r); strings.Count(r.Stdout, "\nsif ") != 1 {
		t.Errorf("after exec docker:// the cache should hold one SIF:\n%s", r.Stdout)
	}
	r = run("-v", "run", "--nohttps", "docker://"+tagged)
	if wantOK(t, r); r.Stdout != "entry:default-arg::/work\n" {
		t.Errorf("run docker://: stdout %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "Using cached SIF") || strings.Contains(r.Stderr, "Layer 1/2") {
		t.Errorf("a second run by tag should use the cached SIF, fetching no layer:\n%s", r.Stderr)
	}
	r = launchWith(t, runOpts{Env: e.env(), Stdin: "echo shell:$0\n"}, "shell", "--nohttps", "docker://"+tagged)
	if wantOK(t, r); !strings.Contains(r.Stdout, "shell:") {
		t.Errorf("shell docker://: stdout %q", r.Stdout)
	}
	// Pinned by digest: from the cache alone.
	reg.Stop()
	r = run("-v", "exec", "--nohttps", "docker://"+pinned, "cat", "/etc/layer2")
	if wantOK(t, r); r.Stdout != "from layer 2\n" {
		t.Errorf("exec docker://…@digest with the registry stopped: stdout %q", r.Stdout)
	}
	// A tag cannot be resolved without the registry: one line.
	wantFatal(t, run("exec", "--nohttps", "docker://"+tagged, "true"), "docker://"+tagged)
	noTempLeft(t, e.tmp)
}

// TestExecOCILocalSources: oci: layouts and oci-archive: files run from
// the cache the same way; a docker-archive:, which has no manifest digest
// to cache by, is one line saying to convert it first; a source that does
// not exist is one line naming it; nothing is left in TMPDIR.
func TestExecOCILocalSources(t *testing.T) {
	src := busyboxOCI(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", src)
	archive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, archive)
	dockerArchive := filepath.Join(dir, "image.docker.tar")
	tag, _ := name.NewTag("example.org/test/busybox:v1")
	if err := tarball.WriteToFile(dockerArchive, tag, src); err != nil {
		t.Fatal(err)
	}
	e := newOCIEnv(t)
	for _, s := range []string{"oci:" + lay + ":v1", "oci-archive:" + archive} {
		r := e.launch(t, "exec", s, "cat", "/etc/layer2")
		if wantOK(t, r); r.Stdout != "from layer 2\n" {
			t.Errorf("exec %s: stdout %q", s, r.Stdout)
		}
	}
	r := e.launch(t, "cache", "list")
	if wantOK(t, r); strings.Count(r.Stdout, "\nsif ") != 1 {
		t.Errorf("the layout and its archive are one image (one manifest digest): one cached SIF, got\n%s", r.Stdout)
	}
	wantFatal(t, e.launch(t, "exec", "docker-archive:"+dockerArchive, "true"), "docker-archive:", "not supported yet", "launch pull")
	wantFatal(t, e.launch(t, "exec", "oci:"+filepath.Join(dir, "missing"), "true"), filepath.Join(dir, "missing"))
	// A file whose name looks like a source is a file.
	wantOK(t, launchWith(t, runOpts{Dir: dir}, "build", "-q", "oci:img.sif", busyboxTree(t)))
	if _, err := os.Stat(filepath.Join(dir, "oci:img.sif")); err != nil {
		t.Fatal(err)
	}
	r = launchWith(t, runOpts{Dir: dir}, "exec", "oci:img.sif", "echo", "file")
	if wantOK(t, r); r.Stdout != "file\n" {
		t.Errorf("exec of a file named oci:img.sif: %q", r.Stdout)
	}
	noTempLeft(t, e.tmp)
}
