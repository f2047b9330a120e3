package layer

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary bytes (seeded with hostile tars) to Apply over a
// tree that already holds symlinks pointing outside: whatever happens,
// nothing may appear outside the root.
func FuzzApply(f *testing.F) {
	f.Add(mkTar(f, file("../evil", "x")))
	f.Add(mkTar(f, symlink("l", "/"), file("l/evil", "x")))
	f.Add(mkTar(f, hardlink("h", "../x"), file("a/.wh..wh..opq", ""), dir("a/")))
	f.Add(mkTar(f, symlink("up", "../outside"), file("up/evil", "x"), file("up/.wh.x", "")))
	if _, err := exec.LookPath("tar"); err == nil {
		for _, format := range []string{"gnu", "posix"} {
			tb, _ := gnuSparseTar(f, format, "sparse", 256<<10)
			f.Add(tb)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooBig(data) {
			t.Skip("entries over 1 MiB (sparse files expand to any size)")
		}
		s := newSandbox(t)
		pre := mkTar(t, symlink("o", s.outside), symlink("p", "../outside"), dir("d/"))
		if _, err := Apply(s.root, bytes.NewReader(pre), Options{}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.outside, "canary"), []byte("c"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Apply(s.root, bytes.NewReader(data), Options{})
		got := listing(t, s.outside)
		if len(got) != 1 || got[0] != "canary -rw-r--r-- c" {
			t.Fatalf("outside changed: %v", got)
		}
	})
}

// tooBig reports whether a tar has an entry larger than 1 MiB: a sparse
// entry can say it is terabytes of zeros, which is slow, not unsafe.
func tooBig(data []byte) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if h.Size > 1<<20 {
			return true
		}
	}
}
