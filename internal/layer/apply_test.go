package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// ent is one tar entry of a generated layer.
type ent struct {
	name, link, body string
	typ              byte
	mode             int64
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}
func withMode(e ent, m int64) ent      { e.mode = m; return e }
func device(name string, typ byte) ent { return ent{name: name, typ: typ, mode: 0o600} }

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sandbox is a temp dir with the root to extract into and an "outside"
// directory next to it that must stay empty.
type sandbox struct{ root, outside string }

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	d := t.TempDir()
	s := sandbox{filepath.Join(d, "root"), filepath.Join(d, "outside")}
	for _, p := range []string{s.root, s.outside} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeAll(s.root) })
	return s
}

func removeAll(p string) {
	_ = filepath.WalkDir(p, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(p)
}

// listing describes the tree: "path type [mode|target|content]" per entry.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+" -> "+l)
		case fi.IsDir():
			out = append(out, rel+"/ "+fi.Mode().Perm().String())
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			out = append(out, rel+" "+fi.Mode().String()+" "+string(b))
		default:
			out = append(out, rel+" "+fi.Mode().Type().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func applyAll(t *testing.T, root string, layers ...[]byte) error {
	t.Helper()
	for _, l := range layers {
		if _, err := Apply(root, bytes.NewReader(l), Options{}); err != nil {
			return err
		}
	}
	return nil
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		layers  [][]ent
		want    []string
		wantErr string
	}{
		{
			name: "basic",
			layers: [][]ent{{
				dir("bin/"), file("bin/sh", "shell"), symlink("bin/ash", "sh"), hardlink("bin/hl", "bin/sh"),
				withMode(file("bin/suid", "x"), 0o4755), withMode(file("secret", "s"), 0o000),
				withMode(dir("locked/"), 0o000), file("locked/inner", "i"),
				device("dev/null", tar.TypeChar), device("dev/sda", tar.TypeBlock),
			}},
			want: []string{
				"bin/ -rwxr-xr-x", "bin/ash -> sh", "bin/hl -rw-r--r-- shell", "bin/sh -rw-r--r-- shell",
				"bin/suid -rwxr-xr-x x", "locked/ -rwx------", "locked/inner -rw-r--r-- i",
				"secret -r-------- s",
			},
		},
		{
			name:   "implicit parents and absolute names",
			layers: [][]ent{{file("/a/b/c", "abs"), file("./d/./e", "dot")}},
			want:   []string{"a/ -rwxr-xr-x", "a/b/ -rwxr-xr-x", "a/b/c -rw-r--r-- abs", "d/ -rwxr-xr-x", "d/e -rw-r--r-- dot"},
		},
		{
			name: "whiteout",
			layers: [][]ent{
				{dir("a/"), file("a/b", "1"), file("a/c", "2"), dir("a/sub/"), file("a/sub/x", "3")},
				{file("a/.wh.b", ""), file("a/.wh.sub", ""), file(".wh.nothing", "")},
			},
			want: []string{"a/ -rwxr-xr-x", "a/c -rw-r--r-- 2"},
		},
		{
			name: "opaque directory",
			layers: [][]ent{
				{dir("d/"), file("d/old", "1"), dir("d/sub/"), file("d/sub/old", "2"), file("keep", "k")},
				{dir("d/"), file("d/new", "n"), file("d/.wh..wh..opq", ""), dir("d/sub/"), file("d/sub/new", "m")},
			},
			want: []string{"d/ -rwxr-xr-x", "d/new -rw-r--r-- n", "d/sub/ -rwxr-xr-x", "d/sub/new -rw-r--r-- m", "keep -rw-r--r-- k"},
		},
		{
			name: "replace types",
			layers: [][]ent{
				{dir("x/"), file("x/in", "1"), file("y", "file"), symlink("z", "y")},
				{file("x", "now a file"), dir("y/"), file("z", "not through the link")},
			},
			want: []string{"x -rw-r--r-- now a file", "y/ -rwxr-xr-x", "z -rw-r--r-- not through the link"},
		},
		{
			name: "symlinked parent stays inside",
			layers: [][]ent{
				{symlink("up", "../../../../.."), symlink("abs", "/"), dir("etc/")},
				{file("up/evil", "1"), file("abs/etc/evil2", "2")},
			},
			want: []string{"abs -> /", "etc/ -rwxr-xr-x", "etc/evil2 -rw-r--r-- 2", "evil -rw-r--r-- 1", "up -> ../../../../.."},
		},
		{
			name:    "dot-dot name",
			layers:  [][]ent{{file("../evil", "x")}},
			wantErr: "outside the root",
		},
		{
			name:    "dot-dot hidden in the middle",
			layers:  [][]ent{{file("a/../../evil", "x")}},
			wantErr: "outside the root",
		},
		{
			name:    "hard link to outside",
			layers:  [][]ent{{hardlink("h", "../../etc/passwd")}},
			wantErr: "outside the root",
		},
		{
			name: "hard link through a symlinked parent resolves inside",
			layers: [][]ent{
				{symlink("l", "/etc"), hardlink("h", "l/hostname")},
			},
			wantErr: "hard link",
		},
		{
			name:    "whiteout of parent",
			layers:  [][]ent{{file("a/.wh...", "")}},
			wantErr: "names no file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			var layers [][]byte
			for _, l := range tt.layers {
				layers = append(layers, mkTar(t, l...))
			}
			err := applyAll(t, s.root, layers...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := listing(t, s.outside); len(got) != 0 {
				t.Errorf("something was written outside the root: %v", got)
			}
			if tt.wantErr == "" {
				if got := listing(t, s.root); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
				}
			}
		})
	}
}

// TestApplyAbsoluteSymlinkToOutside: a symlink to a real directory outside,
// then files through it and over it: everything lands inside the root.
func TestApplyAbsoluteSymlinkToOutside(t *testing.T) {
	s := newSandbox(t)
	l1 := mkTar(t, symlink("out", s.outside), symlink("f", filepath.Join(s.outside, "victim")))
	if err := applyAll(t, s.root, l1, mkTar(t, file("f", "not through"))); err != nil {
		t.Fatal(err)
	}
	// The link's target does not exist inside the root: refused, not followed out.
	if err := applyAll(t, s.root, mkTar(t, file("out/evil", "x"))); err == nil {
		t.Error("writing through a dangling absolute symlink succeeded")
	}
	// Once it exists inside, the same path lands there.
	err := applyAll(t, s.root, mkTar(t, dir(s.outside+"/"), file("out/evil", "x"), hardlink("h", "out/evil")))
	if err != nil {
		t.Fatal(err)
	}
	if got := listing(t, s.outside); len(got) != 0 {
		t.Errorf("written outside: %v", got)
	}
	inside := filepath.Join(s.root, s.outside, "evil")
	if b, err := os.ReadFile(inside); err != nil || string(b) != "x" {
		t.Errorf("out/evil should be at %s inside the root: %v %q", inside, err, b)
	}
	if b, err := os.ReadFile(filepath.Join(s.root, "f")); err != nil || string(b) != "not through" {
		t.Errorf("f: %v %q", err, b)
	}
}

func TestApplyTruncated(t *testing.T) {
	s := newSandbox(t)
	full := mkTar(t, file("a", strings.Repeat("x", 5000)), file("b", "y"))
	_, err := Apply(s.root, bytes.NewReader(full[:1500]), Options{})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("error %v, want truncated", err)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"a/b": "a/b", "/a/b/": "a/b", "./a": "a", "a/../b": "b", ".": "", "/": "", "a//b": "a/b",
	} {
		got, err := cleanName(in)
		if err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../a", "a/../../b", "/../a"} {
		if _, err := cleanName(in); !errors.Is(err, ErrHostile) {
			t.Errorf("cleanName(%q): %v, want ErrHostile", in, err)
		}
	}
}
