package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Apptainer's ORAS media types, written out here (not taken from launch's
// code) so that a change there fails this test.
const (
	apptainerSIFConfig = "application/vnd.sylabs.sif.config.v1+json"
	apptainerSIFLayer  = "application/vnd.sylabs.sif.layer.v1.sif"
)

// orasManifest is what the test reads back from the registry.
type orasManifest struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	Config        struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"layers"`
}

func sha256File(t *testing.T, p string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:]), int64(len(b))
}

// markedSIF is a busybox SIF holding /etc/marker with text.
func markedSIF(t *testing.T, text string) string {
	t.Helper()
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "marker"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return buildSIF(t, tree)
}

// TestOrasPushPull: launch push stores a SIF in the real registry in
// Apptainer's ORAS form (checked by reading the manifest back with another
// client), and launch pull/build bring back the same bytes: named as
// Apptainer names them, through the cache (a blob by digest), without it,
// and unpacked with --sandbox.
func TestOrasPushPull(t *testing.T) {
	reg := startRegistry(t)
	img := markedSIF(t, "oras marker\n")
	ref := "oras://" + reg.Host + "/test/app:v1"
	e := newOCIEnv(t)
	r := e.launch(t, "push", img, ref)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Pushed "+ref+": sha256:") {
		t.Errorf("push does not report the digest:\n%s", r.Stderr)
	}

	// The manifest, as another client sees it.
	gref, err := name.ParseReference(reg.Host+"/test/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(gref)
	if err != nil {
		t.Fatal(err)
	}
	var m orasManifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	sum, size := sha256File(t, img)
	empty := sha256.Sum256([]byte("{}"))
	switch {
	case m.SchemaVersion != 2 || m.MediaType != string(types.OCIManifestSchema1):
		t.Errorf("manifest type: %d %q", m.SchemaVersion, m.MediaType)
	case m.Config.MediaType != apptainerSIFConfig || m.Config.Digest != "sha256:"+hex.EncodeToString(empty[:]) || m.Config.Size != 2:
		t.Errorf("config: %+v, want the empty JSON object as %s", m.Config, apptainerSIFConfig)
	case len(m.Layers) != 1:
		t.Errorf("layers: %+v, want one", m.Layers)
	case m.Layers[0].MediaType != apptainerSIFLayer || m.Layers[0].Digest != sum || m.Layers[0].Size != size:
		t.Errorf("layer: %+v, want %s %s %d", m.Layers[0], apptainerSIFLayer, sum, size)
	case m.Layers[0].Annotations["org.opencontainers.image.title"] != "image.sif":
		t.Errorf("layer title: %v", m.Layers[0].Annotations)
	}
	// Pushing again is fine (the blobs are there already), also with --nohttps.
	wantOK(t, e.launch(t, "push", "-q", "--nohttps", img, ref))

	orig, _ := os.ReadFile(img)
	same := func(p string) {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, orig) {
			t.Errorf("%s differs from the pushed SIF (%v)", p, err)
		}
	}
	// pull without OUT: NAME_TAG.sif, through the cache.
	work := t.TempDir()
	r = launchWith(t, runOpts{Dir: work, Env: e.env(), Timeout: 2 * time.Minute}, "pull", ref)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Fetching "+ref) {
		t.Errorf("pull's progress lines:\n%s", r.Stderr)
	}
	pulled := filepath.Join(work, "app_v1.sif")
	same(pulled)
	r = launch(t, "exec", pulled, "cat", "/etc/marker")
	if wantOK(t, r); r.Stdout != "oras marker\n" {
		t.Errorf("exec of the pulled SIF: %q", r.Stdout)
	}
	// exec and inspect of the oras:// source itself: the cached blob runs.
	r = e.launch(t, "exec", ref, "cat", "/etc/marker")
	if wantOK(t, r); r.Stdout != "oras marker\n" {
		t.Errorf("exec %s: %q", ref, r.Stdout)
	}
	wantOK(t, e.launch(t, "inspect", ref))
	r = e.launch(t, "cache", "list")
	if wantOK(t, r); !strings.Contains(r.Stdout, "blob  "+sum) {
		t.Errorf("the SIF should be a cached blob %s:\n%s", sum, r.Stdout)
	}
	// By digest, into a named file, and with build.
	out := filepath.Join(t.TempDir(), "bydigest.sif")
	wantOK(t, e.launch(t, "pull", "-q", out, "oras://"+reg.Host+"/test/app@"+desc.Digest.String()))
	same(out)
	built := filepath.Join(t.TempDir(), "built.sif")
	wantOK(t, e.launch(t, "build", "-q", built, ref))
	same(built)
	wantFatal(t, e.launch(t, "pull", "-q", out, ref), out, "already exists")
	// --disable-cache: the same bytes, the cache untouched.
	e2 := newOCIEnv(t)
	nc := filepath.Join(t.TempDir(), "nc.sif")
	wantOK(t, e2.launch(t, "pull", "-q", "--disable-cache", nc, ref))
	same(nc)
	if r := e2.launch(t, "cache", "list"); !strings.Contains(r.Stdout, "0 entries") {
		t.Errorf("--disable-cache filled the cache: %s", r.Stdout)
	}
	noTempLeft(t, e2.tmp)
	// --sandbox: a directory.
	sb := filepath.Join(t.TempDir(), "sb")
	wantOK(t, e.launch(t, "pull", "-q", "--sandbox", sb, ref))
	if b, err := os.ReadFile(filepath.Join(sb, "etc", "marker")); err != nil || string(b) != "oras marker\n" {
		t.Errorf("pull --sandbox: /etc/marker %q %v", b, err)
	}
	noTempLeft(t, e.tmp)
}

// TestOrasBad: a missing artifact, an OCI image asked for as oras://, an
// artifact whose layer is not a SIF, a file that is not a SIF, a wrong
// destination and a registry that is down are each one FATAL line, and
// leave no output, nothing in the cache and no temporary files.
func TestOrasBad(t *testing.T) {
	reg := startRegistry(t)
	ociRef := reg.push(t, "test/busybox:v1", busyboxOCI(t))
	// An artifact in ORAS form whose "SIF" is not one.
	garbage := static.NewLayer(bytes.Repeat([]byte("not a sif "), 20), apptainerSIFLayer)
	gref, _ := name.ParseReference(reg.Host+"/test/garbage:v1", name.Insecure)
	if err := remote.WriteLayer(gref.Context(), garbage); err != nil {
		t.Fatal(err)
	}
	gd, _ := garbage.Digest()
	cfg := static.NewLayer([]byte("{}"), apptainerSIFConfig)
	if err := remote.WriteLayer(gref.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	cd, _ := cfg.Digest()
	man := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"` + apptainerSIFConfig +
		`","digest":"` + cd.String() + `","size":2},"layers":[{"mediaType":"` + apptainerSIFLayer + `","digest":"` + gd.String() + `","size":200}]}`
	if err := remote.Put(gref, rawManifest(man)); err != nil {
		t.Fatal(err)
	}

	e := newOCIEnv(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.sif")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing tag", []string{"pull", out, "oras://" + reg.Host + "/test/app:nope"}, []string{"not found", reg.Host}},
		{"an OCI image", []string{"pull", out, "oras://" + ociRef}, []string{"not a SIF artifact", "docker://"}},
		{"layer not a SIF", []string{"pull", out, "oras://" + reg.Host + "/test/garbage:v1"}, []string{"not a SIF file"}},
		{"layer not a SIF, no cache", []string{"pull", "--disable-cache", out, "oras://" + reg.Host + "/test/garbage:v1"}, []string{"not a SIF file"}},
		{"bad reference", []string{"pull", out, "oras://" + reg.Host + "/UPPER/case"}, []string{"not a valid ORAS reference"}},
		{"push a non-SIF", []string{"push", filepath.Join(dir), "oras://" + reg.Host + "/test/x:v1"}, []string{"not a SIF file"}},
		{"push to docker://", []string{"push", out, "docker://" + reg.Host + "/test/x:v1"}, []string{"oras://"}},
		{"registry down", []string{"pull", out, "oras://127.0.0.1:1/test/app:v1"}, []string{"connection refused"}},
		{"library", []string{"pull", out, "library://alpine:3.20"}, []string{"library://", "not supported", "docker://"}},
		{"shub", []string{"build", out, "shub://org/img"}, []string{"shub://", "not supported"}},
		{"library push", []string{"push", out, "library://u/c/i:1"}, []string{"not supported"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantFatal(t, e.launch(t, append([]string{"-q"}, c.args...)...), c.want...)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s left %s", c.name, out)
			}
		})
	}
	// The site's build.max_unpacked_size bounds an oras:// SIF as it does
	// the layers of a docker:// image: refused before it is fetched.
	conf := filepath.Join(dir, "small.conf")
	write(t, conf, "[build]\nmax_unpacked_size = \"100\"\n", 0o644)
	small := runOpts{Env: e.env("LAUNCH_CONF=" + conf), Timeout: 5 * time.Minute}
	gsrc := "oras://" + reg.Host + "/test/garbage:v1"
	for _, args := range [][]string{{"pull", out, gsrc}, {"pull", "--disable-cache", out, gsrc}, {"exec", gsrc, "true"}} {
		wantFatal(t, launchWith(t, small, append([]string{"-q"}, args...)...), "build.max_unpacked_size", "200 B")
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v over the limit left %s", args, out)
		}
	}
	if r := e.launch(t, "cache", "list"); !strings.Contains(r.Stdout, "0 entries") {
		t.Errorf("failed pulls left cache entries: %s", r.Stdout)
	}
	noTempLeft(t, e.tmp)
}

// rawManifest is a manifest to remote.Put as it is.
type rawManifest string

func (m rawManifest) RawManifest() ([]byte, error) { return []byte(m), nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// TestSandboxFromEverySource: build --sandbox and pull --sandbox from
// docker://, oci:, oci-archive:, docker-archive: give the image's tree
// with Apptainer's metadata, set-uid bits cleared and no device nodes;
// an existing OUT needs --force.
func TestSandboxFromEverySource(t *testing.T) {
	reg := startRegistry(t)
	// busybox plus a set-uid file and a device node in a layer.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "bin/suid", Mode: 0o4755, Typeflag: tar.TypeReg, Size: 3, ModTime: time.Unix(1700000000, 0)})
	tw.Write([]byte("x\n\n"))
	tw.WriteHeader(&tar.Header{Name: "dev/null2", Mode: 0o666, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, ModTime: time.Unix(1700000000, 0)})
	tw.Close()
	src, err := mutate.AppendLayers(busyboxOCI(t), layerOf(t, b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dockerRef := reg.push(t, "test/sb:v1", src)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", src)
	archive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, archive)
	dockerArchive := filepath.Join(dir, "image.docker.tar")
	tag, _ := name.NewTag("example.org/test/sb:v1")
	if err := tarball.WriteToFile(dockerArchive, tag, src); err != nil {
		t.Fatal(err)
	}
	e := newOCIEnv(t)
	for _, c := range []struct{ args []string }{
		{[]string{"build", "--sandbox"}},
		{[]string{"pull", "--sandbox"}},
	} {
		for _, s := range []string{"docker://" + dockerRef, "oci:" + lay + ":v1", "oci-archive:" + archive, "docker-archive:" + dockerArchive} {
			kind := strings.SplitN(s, ":", 2)[0]
			t.Run(c.args[0]+"-"+kind, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "tree")
				wantOK(t, e.launch(t, append(append([]string{"-q"}, c.args...), out, s)...))
				checkSandboxTree(t, out)
				wantFatal(t, e.launch(t, append(append([]string{"-q"}, c.args...), out, s)...), "already exists")
				wantOK(t, e.launch(t, append(append([]string{"-q"}, c.args...), "--force", out, s)...))
				checkSandboxTree(t, out)
			})
		}
	}
	noTempLeft(t, e.tmp)
}

// checkSandboxTree checks a sandbox unpacked from TestSandboxFromEverySource's image.
func checkSandboxTree(t *testing.T, out string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(out, "etc", "layer2")); err != nil || string(b) != "from layer 2\n" {
		t.Errorf("/etc/layer2: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, ".singularity.d", "runscript")); err != nil {
		t.Errorf("no runscript in the sandbox: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(out, "bin", "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("bin/suid: %v %v (want it there, set-uid bit cleared)", fi.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(out, "dev", "null2")); err == nil {
		t.Error("the device node dev/null2 was unpacked")
	}
	r := launch(t, "exec", out, "cat", "/etc/layer2")
	if wantOK(t, r); r.Stdout != "from layer 2\n" {
		t.Errorf("exec in the sandbox: %q", r.Stdout)
	}
}
