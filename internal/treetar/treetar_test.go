package treetar

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "d/e"), 0o755))
	must(os.WriteFile(filepath.Join(root, "d/f"), []byte("data"), 0o644))
	must(os.Link(filepath.Join(root, "d/f"), filepath.Join(root, "d/hard")))
	must(os.Symlink("f", filepath.Join(root, "d/sym")))
	var b bytes.Buffer
	skipped, err := Write(&b, root, false)
	must(err)
	if skipped != 0 {
		t.Errorf("skipped %d", skipped)
	}
	var got []string
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		body, _ := io.ReadAll(tr)
		got = append(got, h.Name+"|"+string(h.Typeflag)+"|"+h.Linkname+"|"+string(body))
	}
	want := []string{"d/|5||", "d/e/|5||", "d/f|0||data", "d/hard|1|d/f|", "d/sym|2|f|"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
