package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// sifObjects returns the definition file and the JSON.Generic objects (by
// name) of the SIF at path.
func sifObjects(t *testing.T, path string) (string, map[string][]byte) {
	t.Helper()
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		t.Fatal(err)
	}
	defer f.UnloadContainer()
	def := ""
	if d, err := f.GetDescriptor(sif.WithDataType(sif.DataDeffile)); err == nil {
		b, _ := d.GetData()
		def = string(b)
	} else {
		t.Errorf("%s has no definition-file descriptor: %v", path, err)
	}
	objs := map[string][]byte{}
	ds, _ := f.GetDescriptors(sif.WithDataType(sif.DataGenericJSON))
	for _, d := range ds {
		b, _ := d.GetData()
		objs[d.Name()] = b
	}
	return def, objs
}

// checkSifMeta checks what every SIF launch builds has, as Apptainer
// writes it: the base /.singularity.d, labels.json with the build labels,
// a definition-file descriptor starting with wantDef and the
// inspect-metadata.json descriptor.
func checkSifMeta(t *testing.T, img, wantDef, bootstrap string) {
	t.Helper()
	for _, p := range []string{"actions/exec", "actions/run", "actions/shell", "actions/start", "actions/test",
		"env/01-base.sh", "env/99-base.sh", "runscript", "startscript", "labels.json", "Singularity"} {
		r := launch(t, "exec", img, "test", "-f", "/.singularity.d/"+p)
		if r.Code != 0 {
			t.Errorf("/.singularity.d/%s missing: %s", p, r.Stderr)
		}
	}
	r := launch(t, "exec", img, "cat", "/.singularity.d/labels.json")
	wantOK(t, r)
	var labels map[string]string
	if err := json.Unmarshal([]byte(r.Stdout), &labels); err != nil {
		t.Fatalf("labels.json %q: %v", r.Stdout, err)
	}
	for _, k := range []string{"org.label-schema.schema-version", "org.label-schema.build-date", "org.label-schema.build-arch",
		"org.label-schema.usage.launch.version", "org.opencontainers.image.created"} {
		if labels[k] == "" {
			t.Errorf("labels.json lacks %s: %s", k, r.Stdout)
		}
	}
	if got := labels["org.label-schema.usage.singularity.deffile.bootstrap"]; got != bootstrap {
		t.Errorf("deffile.bootstrap label = %q, want %q", got, bootstrap)
	}
	def, objs := sifObjects(t, img)
	if !strings.HasPrefix(def, wantDef) {
		t.Errorf("definition file descriptor = %q, want it to start with %q", def, wantDef)
	}
	var md struct {
		Data struct {
			Attributes struct {
				Labels    map[string]string `json:"labels"`
				Runscript string            `json:"runscript"`
				Deffile   string            `json:"deffile"`
			} `json:"attributes"`
		} `json:"data"`
		Type string `json:"type"`
	}
	raw, ok := objs["inspect-metadata.json"]
	if !ok {
		t.Fatalf("no inspect-metadata.json descriptor (objects: %v)", objs)
	}
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatalf("inspect-metadata.json %s: %v", raw, err)
	}
	if md.Type != "container" || md.Data.Attributes.Labels["org.label-schema.schema-version"] != "1.0" ||
		md.Data.Attributes.Runscript == "" || !strings.HasPrefix(md.Data.Attributes.Deffile, strings.TrimRight(wantDef, "\n")) {
		t.Errorf("inspect-metadata.json = %s", raw)
	}
	r = launch(t, "inspect", img)
	if wantOK(t, r); !strings.Contains(r.Stdout, "org.label-schema.build-arch") {
		t.Errorf("inspect does not show the build labels: %s", r.Stdout)
	}
}

// treeFiles lists the paths under root.
func treeFiles(t *testing.T, root string) string {
	var ps []string
	filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		ps = append(ps, p)
		return err
	})
	return strings.Join(ps, "\n")
}

// TestSifMetaDir builds from a bare busybox tree: the SIF has Apptainer's
// metadata, `launch run` runs the default runscript, and the tree is as it
// was.
func TestSifMetaDir(t *testing.T) {
	tree := busyboxTree(t)
	before := treeFiles(t, tree)
	img := buildSIF(t, tree)
	if after := treeFiles(t, tree); after != before {
		t.Errorf("the build changed the source tree:\nbefore %s\nafter %s", before, after)
	}
	checkSifMeta(t, img, "bootstrap: localimage\nfrom: "+tree+"\n", "localimage")
	r := launch(t, "run", img)
	if wantOK(t, r); !strings.Contains(r.Stdout, "There is no runscript defined for this container") {
		t.Errorf("run of an image without a runscript: %+v", r)
	}
	// A repack keeps the definition file and the metadata.
	out := filepath.Join(t.TempDir(), "re.sif")
	wantOK(t, launch(t, "build", "-q", out, img))
	checkSifMeta(t, out, "bootstrap: localimage\nfrom: "+tree+"\n", "localimage")
}

// TestSifMetaOCI builds from an OCI archive.
func TestSifMetaOCI(t *testing.T) {
	src := busyboxOCI(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", src)
	archive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, archive)
	e := newOCIEnv(t)
	out := filepath.Join(t.TempDir(), "img.sif")
	wantOK(t, e.launch(t, "build", "-q", out, "oci-archive:"+archive))
	checkSifMeta(t, out, "bootstrap: oci-archive\nfrom: "+archive+"\n", "oci-archive")
}

// TestSifMetaDef builds from a definition file on a bare busybox tree.
func TestSifMetaDef(t *testing.T) {
	tree := busyboxTree(t)
	dir := t.TempDir()
	def := filepath.Join(dir, "a.def")
	text := "Bootstrap: localimage\nFrom: " + tree + "\n\n%labels\n    maintainer me\n"
	if err := os.WriteFile(def, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "a.sif")
	wantOK(t, launch(t, "build", "-q", out, def))
	checkSifMeta(t, out, "Bootstrap: localimage\n", "localimage")
	r := launch(t, "inspect", out)
	if wantOK(t, r); !strings.Contains(r.Stdout, "maintainer: me") {
		t.Errorf("inspect lost %%labels: %s", r.Stdout)
	}
}
