package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// treeTar runs the layers through a Tree and returns the tar its Plan
// writes (static entries, then each layer's content).
func treeTar(t testing.TB, layers [][]byte, o TreeOptions) ([]byte, error) {
	t.Helper()
	tr := NewTree(o)
	for i, l := range layers {
		if _, err := tr.Layer(i, bytes.NewReader(l), 0); err != nil {
			return nil, err
		}
	}
	p := tr.Plan()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := p.WriteStatic(tw); err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if p.Needs(i) {
			if err := p.WriteLayer(i, bytes.NewReader(l), tw, make([]byte, 4096)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), nil
}

// onlineTar is treeTar through StreamLayer, for one layer.
func onlineTar(t testing.TB, layer []byte, o TreeOptions) ([]byte, error) {
	t.Helper()
	tr := NewTree(o)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if _, err := tr.StreamLayer(bytes.NewReader(layer), 0, tw, make([]byte, 4096)); err != nil {
		return nil, err
	}
	p := tr.Plan()
	if p.Needs(0) {
		t.Fatal("after StreamLayer, the plan needs the layer again")
	}
	if err := p.WriteStatic(tw); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), nil
}

// linkListing is listing with the number of names of each regular file.
func linkListing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, l := range listing(t, root) {
		rel, _, _ := strings.Cut(l, " ")
		if fi, err := os.Lstat(filepath.Join(root, rel)); err == nil && fi.Mode().IsRegular() {
			l += " nlink=" + strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Nlink))
		}
		out = append(out, l)
	}
	return out
}

// testTreeOptions capture /.singularity.d, as launch pull does.
func testTreeOptions() TreeOptions {
	return TreeOptions{Umask: umask(), Now: time.Now(), Capture: func(p string) bool { return strings.HasPrefix(p, ".singularity.d/") }}
}

func umask() uint32 {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return uint32(m)
}

// TestTreeSameAsApply: the tar a Tree writes, extracted, is the tree Apply
// makes of the same layers; what a Tree cannot reproduce is
// ErrNotStreamable, and Apply's errors are its errors.
func TestTreeSameAsApply(t *testing.T) {
	tests := []struct {
		name       string
		layers     [][]ent
		notStream  string // the reason, when not streamable
		wantErrStr string
		restart    bool // StreamLayer must read the (single) layer again
	}{
		{name: "basic", layers: [][]ent{{
			dir("bin/"), file("bin/sh", "shell"), symlink("bin/ash", "sh"), hardlink("bin/hl", "bin/sh"),
			withMode(file("bin/suid", "x"), 0o4755), withMode(file("secret", "s"), 0o000),
			withMode(dir("locked/"), 0o000), file("locked/inner", "i"),
			device("dev/null", tar.TypeChar), device("dev/sda", tar.TypeBlock),
			{name: "fifo", typ: tar.TypeFifo, mode: 0o640},
		}}},
		{name: "implicit parents and absolute names", layers: [][]ent{{file("/a/b/c", "abs"), file("./d/./e", "dot")}}},
		{name: "whiteout", layers: [][]ent{
			{dir("a/"), file("a/b", "1"), file("a/c", "2"), dir("a/sub/"), file("a/sub/x", "3")},
			{file("a/.wh.b", ""), file("a/.wh.sub", ""), file(".wh.nothing", ""), file("nodir/x/.wh.y", "")},
		}},
		{name: "whiteout in the same layer", layers: [][]ent{{file("a", "1"), file(".wh.a", ""), file("b", "2")}}, restart: true},
		{name: "whiteout of nothing", layers: [][]ent{{file(".wh.a", ""), file("b", "2"), dir("c/"), file("c/.wh..wh..opq", "")}}},
		{name: "opaque directory", layers: [][]ent{
			{dir("d/"), file("d/old", "1"), dir("d/sub/"), file("d/sub/old", "2"), file("keep", "k")},
			{dir("d/"), file("d/new", "n"), file("d/.wh..wh..opq", ""), dir("d/sub/"), file("d/sub/new", "m"), file("e/.wh..wh..opq", "")},
		}},
		{name: "replace types", layers: [][]ent{
			{dir("x/"), file("x/in", "1"), file("y", "file"), symlink("z", "y")},
			{file("x", "now a file"), dir("y/"), file("z", "not through the link")},
		}},
		{name: "duplicates in a layer", layers: [][]ent{{file("a", "1"), file("a", "2"), withMode(dir("d/"), 0o700), withMode(dir("d/"), 0o755)}}, restart: true},
		{name: "same directory twice", layers: [][]ent{{dir("d/"), file("d/x", "1"), dir("d/")}}},
		{name: "metadata held back", layers: [][]ent{{dir(".singularity.d/"), file(".singularity.d/runscript", "r"), hardlink(".singularity.d/r2", ".singularity.d/runscript"), file("x", "1")}}},
		{name: "metadata linked from outside", layers: [][]ent{{file("x", "1"), hardlink(".singularity.d/x", "x")}}, restart: true},
		{name: "hard links across layers", layers: [][]ent{
			{file("a", "lower"), hardlink("b", "a")},
			{file("a", "upper"), hardlink("c", "b"), file(".wh.b", "")},
		}},
		{name: "hard link replacing its target's other name", layers: [][]ent{{file("a", "x"), hardlink("b", "a"), hardlink("a", "b")}}, restart: true},
		{name: "hard link to itself", layers: [][]ent{{file("a", "x"), hardlink("a", "a")}}},
		{name: "symlinked parent", layers: [][]ent{
			{symlink("up", "../../../../.."), dir("etc/")},
			{file("up/evil", "1")},
		}, notStream: "/up is reached through the symbolic link up"},
		{name: "hard link to a missing file", layers: [][]ent{{hardlink("h", "nothing")}}, notStream: "which is missing"},
		{name: "hard link to a directory", layers: [][]ent{{dir("d/"), hardlink("h", "d")}}, notStream: "to the directory"},
		{name: "below a file", layers: [][]ent{{file("f", "x"), file("f/g", "y")}}, notStream: "not a directory"},
		{name: "whiteout below a file", layers: [][]ent{{file("c", "1")}, {file("c/.wh.x", "")}}, notStream: "below a file"},
		{name: "whiteout below a file's child", layers: [][]ent{{file("c", "1")}, {file("c/d/.wh.x", "")}}},
		{name: "long component", layers: [][]ent{{file(strings.Repeat("x", 256), "x")}}, notStream: "long component"},
		{name: "dot-dot name", layers: [][]ent{{file("../evil", "x")}}, wantErrStr: "outside the root"},
		{name: "hard link to outside", layers: [][]ent{{hardlink("h", "../../etc/passwd")}}, wantErrStr: "outside the root"},
		{name: "whiteout of parent", layers: [][]ent{{file("a/.wh...", "")}}, wantErrStr: "names no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers [][]byte
			for _, l := range tt.layers {
				layers = append(layers, mkTar(t, l...))
			}
			direct := newSandbox(t)
			aerr := applyAll(t, direct.root, layers...)
			out, terr := treeTar(t, layers, testTreeOptions())
			switch {
			case tt.notStream != "":
				if !errors.Is(terr, ErrNotStreamable) || !strings.Contains(terr.Error(), tt.notStream) {
					t.Fatalf("Tree: %v, want not streamable: %s", terr, tt.notStream)
				}
				return
			case tt.wantErrStr != "":
				if aerr == nil || terr == nil || aerr.Error() != terr.Error() || !strings.Contains(terr.Error(), tt.wantErrStr) {
					t.Fatalf("Apply: %v; Tree: %v; want the same error, with %q", aerr, terr, tt.wantErrStr)
				}
				return
			case aerr != nil || terr != nil:
				t.Fatalf("Apply: %v; Tree: %v", aerr, terr)
			}
			streamed := newSandbox(t)
			if _, err := Apply(streamed.root, bytes.NewReader(out), Options{}); err != nil {
				t.Fatalf("extracting the Tree's tar: %v", err)
			}
			want, got := linkListing(t, direct.root), linkListing(t, streamed.root)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("tree:\n got %q\nwant %q", got, want)
			}
			if len(layers) != 1 {
				return
			}
			out, err := onlineTar(t, layers[0], testTreeOptions())
			if errors.Is(err, ErrRestart) {
				if !tt.restart {
					t.Fatalf("StreamLayer: %v", err)
				}
				return
			}
			if err != nil || tt.restart {
				t.Fatalf("StreamLayer: %v (restart expected: %v)", err, tt.restart)
			}
			online := newSandbox(t)
			if _, err := Apply(online.root, bytes.NewReader(out), Options{}); err != nil {
				t.Fatalf("extracting StreamLayer's tar: %v", err)
			}
			if got := linkListing(t, online.root); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("StreamLayer's tree:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestTreeCapture: the metadata files are held in memory and written from
// there; WriteFile and Mkdir add to the tree as build.WriteInRoot and
// MkdirAll would.
func TestTreeCapture(t *testing.T) {
	layers := [][]byte{mkTar(t, file(".singularity.d/runscript", "#!/bin/sh\n"), file("big", "data"))}
	tr := NewTree(TreeOptions{Umask: 0o022, Capture: func(p string) bool { return strings.HasPrefix(p, ".singularity.d/") }})
	if _, err := tr.Layer(0, bytes.NewReader(layers[0]), 0); err != nil {
		t.Fatal(err)
	}
	ok, isDir, ino, err := tr.Lookup("/.singularity.d/runscript")
	if err != nil || !ok || isDir || !ino.Captured() || string(ino.Data) != "#!/bin/sh\n" {
		t.Fatalf("runscript: %v %v %v %+v", ok, isDir, err, ino)
	}
	if _, _, ino, _ := tr.Lookup("big"); ino.Captured() {
		t.Errorf("big should not be captured")
	}
	if err := tr.WriteFile("/.singularity.d/env/10-x.sh", []byte("export A=1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.Mkdir("/work/dir", 0o755, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteFile("/work", nil, 0o644); !errors.Is(err, ErrNotStreamable) {
		t.Errorf("WriteFile over a directory: %v, want not streamable", err)
	}
	p := tr.Plan()
	if p.Needs(0) != true {
		t.Errorf("layer 0 holds big")
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := p.WriteStatic(tw); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteLayer(0, bytes.NewReader(layers[0]), tw, make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	s := newSandbox(t)
	if _, err := Apply(s.root, &b, Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{".singularity.d/ -rwxr-xr-x", ".singularity.d/env/ -rwxr-xr-x", ".singularity.d/env/10-x.sh -rwxr-xr-x export A=1\n",
		".singularity.d/runscript -rw-r--r-- #!/bin/sh\n", "big -rw-r--r-- data", "work/ -rwxr-xr-x", "work/dir/ -rwxr-xr-x"}
	if got := listing(t, s.root); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// FuzzTree: for any layer, a Tree either says it is not streamable, fails
// as Apply fails, or writes a tar that extracts to the tree Apply makes;
// and so does StreamLayer, unless it asks for a second read.
func FuzzTree(f *testing.F) {
	f.Add(mkTar(f, file("a", "1"), hardlink("b", "a"), file("a", "2"), file(".wh.b", "")))
	f.Add(mkTar(f, dir("d/"), file("d/x", "1"), file("d/.wh..wh..opq", ""), symlink("s", "d")))
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooBig(data) {
			t.Skip("entries over 1 MiB")
		}
		direct := newSandbox(t)
		_, aerr := Apply(direct.root, bytes.NewReader(data), Options{})
		out, terr := treeTar(t, [][]byte{data}, testTreeOptions())
		if errors.Is(terr, ErrNotStreamable) {
			return
		}
		if (aerr == nil) != (terr == nil) {
			t.Fatalf("Apply: %v; Tree: %v", aerr, terr)
		}
		if aerr != nil {
			return
		}
		streamed := newSandbox(t)
		if _, err := Apply(streamed.root, bytes.NewReader(out), Options{}); err != nil {
			t.Fatalf("extracting the Tree's tar: %v", err)
		}
		want, got := linkListing(t, direct.root), linkListing(t, streamed.root)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("tree:\n got %q\nwant %q", got, want)
		}
		out, err := onlineTar(t, data, testTreeOptions())
		if errors.Is(err, ErrRestart) {
			return
		}
		if err != nil {
			t.Fatalf("StreamLayer: %v (Layer: ok)", err)
		}
		online := newSandbox(t)
		if _, err := Apply(online.root, bytes.NewReader(out), Options{}); err != nil {
			t.Fatalf("extracting StreamLayer's tar: %v", err)
		}
		if got := linkListing(t, online.root); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("StreamLayer's tree:\n got %q\nwant %q", got, want)
		}
	})
}
