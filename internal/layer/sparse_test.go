package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// gnuSparseTar makes, with GNU tar, a tar of one sparse file name of size
// bytes with "head" at its start and "tail" at its end, in format ("gnu":
// old GNU sparse entries, "posix": PAX sparse 1.0). It returns the tar and
// the file's content; without GNU tar it skips.
func gnuSparseTar(t testing.TB, format, name string, size int64) ([]byte, []byte) {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar is needed to make sparse tar entries")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Truncate(size)
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), size-4)
	f.Close()
	out := filepath.Join(dir, "sparse.tar")
	if b, err := exec.Command("tar", "--sparse", "--format="+format, "-C", dir, "-cf", out, name).CombinedOutput(); err != nil {
		t.Skipf("tar --sparse: %v: %s", err, b)
	}
	tb, _ := os.ReadFile(out)
	content, _ := os.ReadFile(p)
	return tb, content
}

// TestApplySparse: GNU and PAX sparse entries arrive whole, with their holes.
func TestApplySparse(t *testing.T) {
	const size = 2 << 20
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			tb, content := gnuSparseTar(t, format, "sparse", size)
			if h, err := tar.NewReader(bytes.NewReader(tb)).Next(); err != nil ||
				(h.Typeflag != tar.TypeGNUSparse && h.PAXRecords["GNU.sparse.major"] != "1") {
				t.Fatalf("tar made no %s sparse entry: %v", format, err)
			}
			s := newSandbox(t)
			st, err := Apply(s.root, bytes.NewReader(tb), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Bytes != size {
				t.Errorf("Stats.Bytes = %d, want %d", st.Bytes, size)
			}
			p := filepath.Join(s.root, "sparse")
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("content differs (%d bytes, %v)", len(got), err)
			}
			var sst syscall.Stat_t
			if err := syscall.Stat(p, &sst); err != nil {
				t.Fatal(err)
			}
			if sst.Blocks*512 > 64<<10 {
				t.Errorf("%d bytes on disk for a file of %d with 8 bytes of data: holes written out", sst.Blocks*512, size)
			}
		})
	}
}

// TestHoleWriter: whatever the writes, the content is the same, and whole
// zero blocks are holes.
func TestHoleWriter(t *testing.T) {
	data := make([]byte, 10*holeBlock+100)
	copy(data[3*holeBlock+5:], "middle")
	copy(data[len(data)-3:], "end")
	trailingHole := make([]byte, 6*holeBlock)
	copy(trailingHole[holeBlock:], "data")
	for _, tc := range []struct {
		data  []byte
		chunk int
	}{{data, 1 << 20}, {data, holeBlock}, {data, 1000}, {data, 7}, {trailingHole, 1 << 20}, {trailingHole, 3}} {
		data, chunk := tc.data, tc.chunk
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		w := &holeWriter{f: f, buf: make([]byte, 4*holeBlock)}
		for i := 0; i < len(data); i += chunk {
			if _, err := w.Write(data[i:min(i+chunk, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.finish(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(f.Name())
		if !bytes.Equal(got, data) {
			t.Errorf("chunk %d: content differs", chunk)
		}
		// The block before "middle" is a hole.
		if off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA); err != nil || off < holeBlock {
			t.Errorf("chunk %d: data starts at %d (%v), want a hole first", chunk, off, err)
		}
		f.Close()
	}
}

// TestApplyMaxSize: the file that would pass MaxSize is refused before it
// is written; sparse files count at their full size.
func TestApplyMaxSize(t *testing.T) {
	s := newSandbox(t)
	l := mkTar(t, file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("y", 600)))
	st, err := Apply(s.root, bytes.NewReader(l), Options{MaxSize: 1000})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "/b") {
		t.Fatalf("error %v, want ErrTooLarge naming /b", err)
	}
	if st.Bytes != 600 {
		t.Errorf("Stats.Bytes = %d, want 600", st.Bytes)
	}
	if _, err := os.Lstat(filepath.Join(s.root, "b")); err == nil {
		t.Error("b was written")
	}
	tb, _ := gnuSparseTar(t, "posix", "bomb", 64<<20)
	if _, err := Apply(newSandbox(t).root, bytes.NewReader(tb), Options{MaxSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("sparse bomb: %v, want ErrTooLarge", err)
	}
}

// TestApplyLongNames: names the file system or mksquashfs cannot take say
// so, naming the path in the layer and not the root's.
func TestApplyLongNames(t *testing.T) {
	for _, name := range []string{
		"etc/" + strings.Repeat("x", 300) + "/f",
		strings.Repeat(strings.Repeat("a", 250)+"/", 20) + "f",
	} {
		s := newSandbox(t)
		_, err := Apply(s.root, bytes.NewReader(mkTar(t, file(name, "x"))), Options{})
		if !errors.Is(err, unix.ENAMETOOLONG) {
			t.Errorf("%.20s…: error %v, want ENAMETOOLONG", name, err)
			continue
		}
		if strings.Contains(err.Error(), s.root) || !strings.Contains(err.Error(), "extracting /"+name[:20]) {
			t.Errorf("error should name the path in the layer, not the root: %.400s", err)
		}
	}
}
