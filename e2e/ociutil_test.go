package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/launch-hpc/launch/internal/testregistry"
	"github.com/launch-hpc/launch/internal/treetar"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// registry is a registry started for one test on 127.0.0.1 and stopped
// after it (internal/testregistry).
type registry struct {
	Host string // 127.0.0.1:PORT
}

// startRegistry starts a real docker-registry (Debian's distribution) on a
// free port. A missing binary is a failure, not a skip: scripts/install-deps
// installs it. Tests that need no real registry use memRegistry.
func startRegistry(t *testing.T) *registry {
	t.Helper()
	r, err := testregistry.Real(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return &registry{Host: r.Host}
}

// memRegistry starts go-containerregistry's in-memory registry.
func memRegistry(t *testing.T) *registry {
	t.Helper()
	r := testregistry.InMemory()
	t.Cleanup(r.Stop)
	return &registry{Host: r.Host}
}

// push writes img to the registry as repo:tag and returns its reference.
func (r *registry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref.String()
}

// tarTree writes the directory tree root as a layer tar (paths relative to
// root, hard links kept). Files this user cannot read are left out when
// skipUnreadable, and are an error otherwise.
func tarTree(t testing.TB, root string, skipUnreadable bool) []byte {
	t.Helper()
	var b bytes.Buffer
	skipped, err := treetar.Write(&b, root, skipUnreadable)
	if err != nil {
		t.Fatalf("making a layer of %s: %v", root, err)
	}
	if skipped > 0 {
		t.Logf("left %d unreadable files out of the layer of %s", skipped, root)
	}
	return b.Bytes()
}

// layerOf is a gzip layer of the tar bytes.
func layerOf(t testing.TB, tarBytes []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tarOf builds a layer tar from (name, content) pairs: a name ending in
// "/" is a directory, content "->X" makes a symlink to X.
func tarOf(t testing.TB, entries ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(entries); i += 2 {
		n, c := entries[i], entries[i+1]
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(c)), ModTime: time.Unix(1700000000, 0)}
		switch {
		case strings.HasSuffix(n, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case strings.HasPrefix(c, "->"):
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, c[2:], 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(c))
		}
	}
	tw.Close()
	return b.Bytes()
}

// imageConfig is the configuration the test images get.
type imageConfig struct {
	Env        []string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	Labels     map[string]string
	Arch       string // "" = this machine's
}

// mkImage makes an image of the layers with cfg.
func mkImage(t testing.TB, cfg imageConfig, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if cfg.Arch != "" {
		cf.Architecture = cfg.Arch
	}
	cf.Config = v1.Config{Env: cfg.Env, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, WorkingDir: cfg.WorkingDir, Labels: cfg.Labels}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// busyboxOCI is a two-layer image: the busybox tree, then a layer that
// adds /etc/layer2, removes /etc/group's sibling /etc/removed (whiteout)
// and makes /work; with Env, Entrypoint/Cmd, WorkingDir and Labels.
func busyboxOCI(t testing.TB) v1.Image {
	t.Helper()
	tree := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(tree, "etc", "removed"), []byte("lower\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l1 := layerOf(t, tarTree(t, tree, false))
	l2 := layerOf(t, tarOf(t, "etc/layer2", "from layer 2\n", "etc/.wh.removed", "", "work/", ""))
	return mkImage(t, imageConfig{
		Env:        []string{"PATH=/bin:/usr/bin", `GREETING=hello "oci" $HOME`, "FROM_IMAGE=image"},
		Entrypoint: []string{"/bin/sh", "-c", `echo "entry:$0:$*:$(pwd)"`},
		Cmd:        []string{"default-arg"},
		WorkingDir: "/work",
		Labels:     map[string]string{"org.example.test": "yes"},
	}, l1, l2)
}

// writeLayout writes img into a new OCI layout dir tagged tag.
func writeLayout(t testing.TB, dir, tag string, img v1.Image) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
}

// tarDir writes the files under dir into the tar file out (an oci-archive).
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	cmd := exec.Command("tar", "-C", dir, "-cf", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, b)
	}
}

// noTempLeft fails if dir (a TMPDIR given to launch) holds anything.
func noTempLeft(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
}

var _ = context.Background

// pushIndex writes an image index to the registry as repo:tag.
func (r *registry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref.String()
}
