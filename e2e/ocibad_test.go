package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestOCIBadInput: each kind of bad source is one FATAL line, exit 255, no
// output file and nothing left in TMPDIR.
func TestOCIBadInput(t *testing.T) {
	reg := memRegistry(t)
	good := busyboxOCI(t)
	ref := reg.push(t, "test/busybox:v1", good)
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	foreign := reg.push(t, "test/foreign:v1", mkImage(t, imageConfig{Arch: otherArch, Cmd: []string{"/bin/sh"}},
		layerOf(t, tarOf(t, "etc/x", "x"))))
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        mkImage(t, imageConfig{Arch: otherArch}, layerOf(t, tarOf(t, "etc/x", "x"))),
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}},
	})
	multi := reg.pushIndex(t, "test/multi:v1", idx)
	hostile := reg.push(t, "test/hostile:v1", mkImage(t, imageConfig{},
		layerOf(t, tarOf(t, "etc/ok", "ok", "../../../../escaped-by-launch-test", "evil"))))

	dir := t.TempDir()
	// A layout with a corrupted layer blob.
	corrupt := filepath.Join(dir, "corrupt")
	writeLayout(t, corrupt, "v1", good)
	ls, _ := good.Layers()
	d, _ := ls[1].Digest()
	blob := filepath.Join(corrupt, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(blob, b, 0o644)
	// Truncated archives.
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", good)
	truncOCI := filepath.Join(dir, "trunc.oci.tar")
	tarDir(t, lay, truncOCI)
	truncate(t, truncOCI)
	truncDocker := filepath.Join(dir, "trunc.docker.tar")
	tarDir(t, lay, truncDocker) // not a docker archive at all, then cut
	truncate(t, truncDocker)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unsupported transport", []string{"library://alpine"}, []string{"library://", "not supported"}},
		{"unknown transport", []string{"foo://alpine"}, []string{"unknown transport", "foo"}},
		{"malformed reference", []string{"docker://" + reg.Host + "/Bad/Name::x"}, []string{"not a valid image reference"}},
		{"missing tag", []string{"--nohttps", "docker://" + reg.Host + "/test/busybox:nope"}, []string{"not found", "busybox:nope"}},
		{"missing repository", []string{"--nohttps", "docker://" + reg.Host + "/test/none:v1"}, []string{"not found"}},
		{"registry down", []string{"--nohttps", "docker://127.0.0.1:1/test/busybox:v1"}, []string{"not reachable", "127.0.0.1:1"}},
		{"wrong architecture", []string{"--nohttps", "docker://" + foreign}, []string{"image is for linux/" + otherArch}},
		{"no manifest for this architecture", []string{"--nohttps", "docker://" + multi}, []string{"no image for linux/" + runtime.GOARCH, otherArch}},
		{"bad --arch", []string{"--nohttps", "--arch", "a/b/c/d", "docker://" + ref}, []string{"--arch"}},
		{"hostile layer", []string{"--nohttps", "docker://" + hostile}, []string{"refused", "outside the root"}},
		{"digest mismatch", []string{"oci:" + corrupt + ":v1"}, []string{"digest mismatch"}},
		{"truncated oci-archive", []string{"oci-archive:" + truncOCI}, []string{"truncated"}},
		{"truncated docker-archive", []string{"docker-archive:" + truncDocker}, []string{"docker-archive"}},
		{"missing layout", []string{"oci:" + filepath.Join(dir, "nothing")}, []string{"not an OCI image layout"}},
		{"missing tag in layout", []string{"oci:" + lay + ":nope"}, []string{`no image tagged "nope"`, "v1"}},
		{"missing archive", []string{"oci-archive:" + filepath.Join(dir, "nothing.tar")}, []string{"does not exist"}},
	}
	// Without -q the steps come first and the error is still one FATAL line, the last.
	r := launch(t, "pull", filepath.Join(dir, "x.sif"), "--nohttps", "docker://"+reg.Host+"/test/busybox:nope")
	if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); r.Code != 255 || strings.Count(r.Stderr, "FATAL") != 1 ||
		!strings.HasPrefix(lines[len(lines)-1], "FATAL:") {
		t.Errorf("want steps then one FATAL line, exit 255; got %d: %q", r.Code, r.Stderr)
	}
	_ = ref
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOCIEnv(t)
			out := filepath.Join(t.TempDir(), "out.sif")
			for _, verb := range []string{"pull", "build"} {
				// -q: the progress lines would come before the one FATAL line.
				args := append([]string{verb, "-q"}, tt.args[:len(tt.args)-1]...)
				args = append(args, out, tt.args[len(tt.args)-1])
				wantFatal(t, e.launch(t, args...), tt.want...)
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s left %s behind", verb, out)
				}
				noTempLeft(t, e.tmp)
			}
			// Nothing half-done in the cache either.
			if ents, _ := os.ReadDir(filepath.Join(e.cache, "sif", "sha256")); len(ents) != 0 {
				t.Errorf("cache holds a SIF after a failure: %v", ents)
			}
		})
	}
	if _, err := os.Stat("/escaped-by-launch-test"); err == nil {
		t.Error("the hostile layer wrote /escaped-by-launch-test")
	}
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Join(p, "escaped-by-launch-test")); err == nil {
			t.Errorf("the hostile layer wrote %s", filepath.Join(p, "escaped-by-launch-test"))
		}
	}
}

func truncate(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()*2/3); err != nil {
		t.Fatal(err)
	}
}
