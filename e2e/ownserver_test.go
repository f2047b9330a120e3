package e2e

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverTree is a tree with what a SquashFS server must get right: files
// of sizes around the block and fragment edges, a sparse file, hard and
// symbolic links (one of 4000 bytes), a directory of 600 entries (several
// directory headers and an index), a fifo, odd names and modes.
func serverTree(t *testing.T) string {
	t.Helper()
	root := busyboxTree(t)
	data := filepath.Join(root, "data")
	big := filepath.Join(data, "big")
	for _, d := range []string{data, big, filepath.Join(data, "empty"), filepath.Join(data, "sticky")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(19))
	for _, n := range []int{0, 1, 4095, 4096, 131071, 131072, 131073, 3<<20 + 7} {
		b := make([]byte, n)
		rng.Read(b[:n/2]) // half random, half zeros: blocks that compress and blocks that do not
		writeFile(t, filepath.Join(data, "size-"+strconv.Itoa(n)), b, 0o644)
	}
	writeFile(t, filepath.Join(data, "same-a"), bytes.Repeat([]byte("dup\n"), 5000), 0o644)
	writeFile(t, filepath.Join(data, "same-b"), bytes.Repeat([]byte("dup\n"), 5000), 0o600)
	writeFile(t, filepath.Join(data, "setuid"), []byte("#!/bin/sh\n"), 0o4755)
	writeFile(t, filepath.Join(data, "name with spaces & ümlauts"), []byte("x"), 0o644)
	sparse, err := os.Create(filepath.Join(data, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sparse.WriteAt([]byte("middle"), 5<<20); err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(12 << 20); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	if err := os.Link(filepath.Join(data, "size-4096"), filepath.Join(data, "hardlink")); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"rel": "size-1", "abs": "/data/size-1", "dangling": "nowhere", "long": strings.Repeat("l/", 2000),
	} {
		if err := os.Symlink(target, filepath.Join(data, "link-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 600; i++ {
		writeFile(t, filepath.Join(big, "entry-"+strconv.Itoa(i*7919%100000)), []byte(strconv.Itoa(i)), 0o644)
	}
	if err := syscall.Mkfifo(filepath.Join(data, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "sticky"), 0o1777); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(data, "size-1"), old, old); err != nil {
		t.Fatal(err)
	}
	return root
}

func writeFile(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// listing is what the payload sees of /data: every entry's name, type,
// mode, link count, mtime, owner and link target, the size of all but
// directories, and every regular file's checksum, sorted. (A directory's
// size is what the kernel's squashfs driver reports with launch-squashfs,
// and 0 with squashfuse.)
const listing = `cd /data && find . | sort | while IFS= read -r f; do
	stat -c '%n|%F|%a|%h|%Y|%u|%g' "$f"
	[ -d "$f" ] || stat -c '%s' "$f"
	if [ -L "$f" ]; then readlink "$f"; elif [ -f "$f" ]; then md5sum "$f"; fi
done; ls -l big | wc -l; dd if=size-3145735 bs=1000 skip=1234 count=3 2>/dev/null | md5sum`

// TestOwnServer: launch serves images with its own server, launch-squashfs
// (-d names it), and the payload sees exactly what it sees through
// squashfuse_ll, for gzip, zstd and lz4 images; an xz image is served by
// the fallback (squashfuse_ll) through the same start.
func TestOwnServer(t *testing.T) {
	if _, err := exec.LookPath("squashfuse_ll"); err != nil {
		t.Skip("squashfuse_ll is needed as the reference")
	}
	tree := serverTree(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "squashfuse_ll.conf")
	if err := os.WriteFile(ref, []byte("[tools]\nsquashfuse = [\"squashfuse_ll\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"gzip", "zstd", "lz4", "xz"} {
		t.Run(comp, func(t *testing.T) {
			img := filepath.Join(dir, comp+".sif")
			wantOK(t, launch(t, "build", "-q", "--compression", comp, img, tree))
			own := launch(t, "-d", "exec", "--no-share", img, "sh", "-c", listing)
			wantOK(t, own)
			want := "with " + filepath.Dir(launchBin(t)) + "/launch-squashfs, pid "
			if !strings.Contains(own.Stderr, want) || !strings.Contains(own.Stderr, "launch-squashfs runs /usr/bin/squashfuse_ll in its place for an image it cannot read") {
				t.Errorf("-d does not say %q:\n%s", want, own.Stderr)
			}
			theirs := launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + ref}}, "exec", "--no-share", img, "sh", "-c", listing)
			wantOK(t, theirs)
			if own.Stdout != theirs.Stdout {
				t.Errorf("launch-squashfs and squashfuse_ll differ:\n%s", lineDiff(own.Stdout, theirs.Stdout))
			}
			if n := strings.Count(own.Stdout, "\n"); n < 600 {
				t.Errorf("the listing has %d lines, want more than 600:\n%.2000s", n, own.Stdout)
			}
		})
	}
}

// lineDiff shows the first lines where a and b differ.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "launch-squashfs: "+x, "squashfuse_ll:   "+y)
			if len(out) >= 20 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
