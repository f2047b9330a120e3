package e2e

// Attacks by image layers on launch build and pull (issue 14, items 12 and
// 13): sparse files dropped or written out dense, decompression bombs, and
// names long enough to turn the error into pages of text.

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// sparseTar makes, with GNU tar, a layer tar holding the sparse file name
// (size bytes, with "head" at 0, "middle" at 3 MiB and "tail" at its end
// when data) in format ("gnu": old GNU sparse entries, "posix": PAX sparse
// 1.0). It checks the tar really is sparse in that format and returns it
// and the file's content.
func sparseTar(t *testing.T, format, fname string, size int64, data bool) ([]byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, fname)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if data {
		for off, s := range map[int64]string{0: "head", 3 << 20: "middle", size - 4: "tail"} {
			if _, err := f.WriteAt([]byte(s), off); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Close()
	out := filepath.Join(dir, "layer.tar")
	if b, err := exec.Command("tar", "--sparse", "--format="+format, "--owner=0", "--group=0", "-C", dir, "-cf", out, fname).CombinedOutput(); err != nil {
		t.Fatalf("GNU tar (Debian package tar) is needed: %v: %s", err, b)
	}
	tb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(bytes.NewReader(tb)).Next()
	if err != nil {
		t.Fatal(err)
	}
	if sparse := h.Typeflag == tar.TypeGNUSparse || h.PAXRecords["GNU.sparse.major"] == "1"; !sparse || int64(len(tb)) > size/4 {
		t.Fatalf("tar did not make a %s sparse entry of %s (type %q, %d bytes)", format, fname, h.Typeflag, len(tb))
	}
	return tb, content
}

// archives writes img as a docker-archive and as an oci-archive and returns
// the two sources.
func archives(t *testing.T, img v1.Image) []string {
	t.Helper()
	dir := t.TempDir()
	docker := filepath.Join(dir, "image.docker.tar")
	tag, _ := name.NewTag("example.org/test/attack:v1")
	if err := tarball.WriteToFile(docker, tag, img); err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(dir, "layout")
	writeLayout(t, lay, "v1", img)
	oci := filepath.Join(dir, "image.oci.tar")
	tarDir(t, lay, oci)
	return []string{"docker-archive:" + docker, "oci-archive:" + oci}
}

// TestAttackBuildSparseLayer: a layer's GNU-sparse and PAX-sparse files
// must arrive with their content (the GNU ones were dropped without a word)
// and stay sparse.
func TestAttackBuildSparseLayer(t *testing.T) {
	const size = 8<<20 + 4
	gnu, content := sparseTar(t, "gnu", "gnu-sparse", size, true)
	pax, _ := sparseTar(t, "posix", "pax-sparse", size, true)
	img := mkImage(t, imageConfig{Cmd: []string{"/bin/sh"}}, layerOf(t, gnu), layerOf(t, pax))
	for _, src := range archives(t, img) {
		t.Run(strings.SplitN(src, ":", 2)[0], func(t *testing.T) {
			e := newOCIEnv(t)
			dir := t.TempDir()
			out := filepath.Join(dir, "img.sif")
			wantOK(t, e.launch(t, "build", "-q", out, src))
			noTempLeft(t, e.tmp)
			sb := filepath.Join(dir, "sb")
			wantOK(t, launch(t, "build", "-q", "--sandbox", sb, out))
			for _, f := range []string{"gnu-sparse", "pax-sparse"} {
				p := filepath.Join(sb, f)
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, content) {
					t.Errorf("%s: not unpacked with its content (%d bytes, %v)", f, len(got), err)
					continue
				}
				var st syscall.Stat_t
				if err := syscall.Stat(p, &st); err != nil {
					t.Fatal(err)
				}
				if st.Blocks*512 > 1<<20 {
					t.Errorf("%s: %d bytes on disk for %d with holes: not sparse", f, st.Blocks*512, size)
				}
			}
		})
	}
}

// zeroLayer is a gzip layer of one file of n zero bytes: a few KB that
// unpack to n.
func zeroLayer(t *testing.T, fname string, n int64) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			if err := tw.WriteHeader(&tar.Header{Name: fname, Mode: 0o644, Typeflag: tar.TypeReg, Size: n}); err != nil {
				pw.CloseWithError(err)
				return
			}
			zeros := make([]byte, 1<<20)
			for left := n; left > 0; left -= int64(len(zeros)) {
				if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAttackBuildBomb: layers that unpack to far more than they weigh stop
// at build.max_unpacked_size with one FATAL line, leaving nothing behind.
func TestAttackBuildBomb(t *testing.T) {
	conf := withConf(t, "[build]\nmax_unpacked_size = \"8m\"\n")
	sparseBomb, _ := sparseTar(t, "posix", "sparse-bomb", 64<<20, false)
	cases := []struct {
		name   string
		layers []v1.Layer
	}{
		{"gzip bomb", []v1.Layer{zeroLayer(t, "zeros", 64<<20)}},
		{"sparse bomb", []v1.Layer{layerOf(t, sparseBomb)}},
		{"sum over layers", []v1.Layer{zeroLayer(t, "a", 5<<20), zeroLayer(t, "b", 5<<20)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := archives(t, mkImage(t, imageConfig{}, tc.layers...))[1]
			e := newOCIEnv(t)
			dir := t.TempDir()
			r := launchWith(t, runOpts{Env: append(e.env(), conf...)}, "build", "-q", filepath.Join(dir, "img.sif"), src)
			t.Logf("the error line: %s", r.Stderr)
			wantFatal(t, r, "build.max_unpacked_size", "8.0 MiB")
			wantEntries(t, dir)
			noTempLeft(t, e.tmp)
		})
	}
	// Without the setting (64 GiB by default) the same layers are fine.
	src := archives(t, mkImage(t, imageConfig{}, cases[2].layers...))[1]
	e := newOCIEnv(t)
	wantOK(t, e.launch(t, "build", "-q", filepath.Join(t.TempDir(), "img.sif"), src))
}

// maxLine is the longest error line launch may print.
const maxLine = 1024

// wantShortFatal is wantFatal for errors about long names: one short line,
// naming the real cause and no temporary path.
func wantShortFatal(t *testing.T, r result, tmp string, want ...string) {
	t.Helper()
	t.Logf("the error line: %s", r.Stderr)
	wantFatal(t, r, want...)
	if len(r.Stderr) > maxLine {
		t.Errorf("error line of %d bytes, want at most %d: %.300q…", len(r.Stderr), maxLine, r.Stderr)
	}
	for _, bad := range []string{"permission denied", "launch-build-", tmp} {
		if bad != "" && strings.Contains(r.Stderr, bad) {
			t.Errorf("error line mentions %q: %.300q", bad, r.Stderr)
		}
	}
}

// TestAttackBuildLongNames: a source tree or a layer with names too long for
// the file system is one short FATAL line saying so, not 16 KB naming
// "permission denied" or launch's temporary directory.
func TestAttackBuildLongNames(t *testing.T) {
	comp := strings.Repeat("a", 250)
	t.Run("tree", func(t *testing.T) {
		tree := filepath.Join(t.TempDir(), "tree")
		if err := os.Mkdir(tree, 0o755); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(tree, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ { // 5 KB of path, made relative to fds
			if err := unix.Mkdirat(fd, comp, 0o755); err != nil {
				t.Fatal(err)
			}
			nfd, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			unix.Close(fd)
			if err != nil {
				t.Fatal(err)
			}
			fd = nfd
		}
		unix.Close(fd)
		dir := t.TempDir()
		r := launch(t, "build", "-q", filepath.Join(dir, "img.sif"), tree)
		wantShortFatal(t, r, "", "file name too long")
		wantEntries(t, dir)
	})
	for _, tc := range []struct{ name, entry string }{
		{"layer component", "etc/" + strings.Repeat("x", 300) + "/f"},
		{"layer path", strings.Repeat(comp+"/", 20) + "f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := archives(t, mkImage(t, imageConfig{}, layerOf(t, tarOf(t, "etc/ok", "ok", tc.entry, "x"))))[1]
			e := newOCIEnv(t)
			dir := t.TempDir()
			r := e.launch(t, "build", "-q", filepath.Join(dir, "img.sif"), src)
			wantShortFatal(t, r, e.tmp, "file name too long", "layer 1")
			wantEntries(t, dir)
			noTempLeft(t, e.tmp)
		})
	}
}
