package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/launch-hpc/launch/internal/msg"
)

// TestCheckOverlayImage checks what the launcher accepts as an overlay
// image file, and the one-line reasons for what it refuses.
func TestCheckOverlayImage(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext3"); err != nil {
		t.Skip("mkfs.ext3 not installed")
	}
	dir := t.TempDir()
	ext3 := filepath.Join(dir, "ov.img")
	if out, err := exec.Command("mkfs.ext3", "-q", "-F", ext3, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext3: %v\n%s", err, out)
	}
	sqfs := filepath.Join(dir, "ov.sqfs")
	_ = os.WriteFile(sqfs, append([]byte("hsqs"), make([]byte, 4092)...), 0o644)
	junk := filepath.Join(dir, "junk")
	_ = os.WriteFile(junk, make([]byte, 4096), 0o644)
	sif := filepath.Join(dir, "x.sif")
	_ = os.WriteFile(sif, append(make([]byte, 32), []byte("SIF_MAGIC\x00")...), 0o644)
	link := filepath.Join(dir, "link.img")
	_ = os.Symlink(ext3, link)
	fifo := filepath.Join(dir, "fifo")
	_ = exec.Command("mkfifo", fifo).Run()
	uid := os.Getuid()
	for _, c := range []struct {
		path     string
		ro       bool
		uid      int
		kind     string // want, or
		contains string // the error
		wantRO   bool   // the layer is read-only though ro is not
	}{
		{path: ext3, kind: ImageExt3},
		{path: ext3, ro: true, kind: ImageExt3},
		{path: sqfs, ro: true, kind: ImageSquashFS},
		{path: sqfs, kind: ImageSquashFS, wantRO: true},               // as Apptainer: read-only, with a warning
		{path: sqfs, uid: uid + 1, kind: ImageSquashFS, wantRO: true}, // another's: it is not written
		{path: junk, ro: true, contains: "not an ext3 or SquashFS overlay image"},
		{path: sif, ro: true, contains: "a SIF file"},
		{path: link, contains: "symbolic link"},
		{path: fifo, ro: true, contains: "not a regular file"},
		{path: ext3, uid: uid + 1, contains: "not by you"},
		{path: ext3, uid: uid + 1, ro: true, kind: ImageExt3}, // reading another's image is fine
	} {
		u := uid
		if c.uid != 0 {
			u = c.uid
		}
		o, err := checkOverlayImage(c.path, c.ro, 0, "", u, msg.Stderr(msg.Quiet))
		switch {
		case c.contains != "" && (err == nil || !strings.Contains(err.Error(), c.contains)):
			t.Errorf("%s (ro %v, uid %d): error %v, want one containing %q", filepath.Base(c.path), c.ro, u, err, c.contains)
		case c.contains == "" && (err != nil || o.Image != c.kind || o.Ino == 0 || o.ReadOnly != (c.ro || c.wantRO)):
			t.Errorf("%s (ro %v, uid %d): %+v, %v; want a %s layer, read-only %v", filepath.Base(c.path), c.ro, u, o, err, c.kind, c.ro || c.wantRO)
		}
	}
}
