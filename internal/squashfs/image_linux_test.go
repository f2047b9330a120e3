package squashfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// imageCases are the mksquashfs runs TestImages checks: every compressor
// this package reads, the block sizes, the fragment and table options.
var imageCases = []struct {
	name   string
	args   []string
	offset int64 // where the image is placed in a bigger file
	xattrs bool  // the image stores xattrs
}{
	{name: "gzip", args: []string{"-comp", "gzip"}, xattrs: true},
	{name: "zstd", args: []string{"-comp", "zstd"}, xattrs: true},
	{name: "lz4", args: []string{"-comp", "lz4"}, xattrs: true},
	{name: "lz4-hc-no-xattrs", args: []string{"-comp", "lz4", "-Xhc", "-no-xattrs"}},
	{name: "gzip-4K", args: []string{"-comp", "gzip", "-b", "4K"}, xattrs: true},
	{name: "gzip-1M", args: []string{"-comp", "gzip", "-b", "1M"}, xattrs: true},
	{name: "zstd-1M-always-fragments", args: []string{"-comp", "zstd", "-b", "1M", "-always-use-fragments"}, xattrs: true},
	{name: "gzip-no-fragments", args: []string{"-no-fragments"}, xattrs: true},
	{name: "gzip-always-fragments-4K", args: []string{"-always-use-fragments", "-b", "4K"}, xattrs: true},
	{name: "uncompressed", args: []string{"-noI", "-noD", "-noF", "-noX", "-noId"}, xattrs: true},
	{name: "no-exports-no-duplicates", args: []string{"-no-exports", "-no-duplicates", "-comp", "zstd"}, xattrs: true},
	{name: "offset", args: []string{"-comp", "gzip"}, offset: 12345, xattrs: true},
}

func TestImages(t *testing.T) {
	for _, tc := range imageCases {
		t.Run(tc.name, func(t *testing.T) {
			src, raw := sharedImage(t, tc.args...)
			im := openAt(t, raw, tc.offset, Options{ReadAhead: 2})
			checkImage(t, im, src, tc.xattrs && src.xattrs, true)
			checkDirSizes(t, im, raw)
		})
	}
}

// openAt opens raw placed at off of a file with junk before and after.
func openAt(tb testing.TB, raw []byte, off int64, o Options) *Image {
	tb.Helper()
	buf := bytes.Repeat([]byte{0xa5}, int(off))
	buf = append(buf, raw...)
	buf = append(buf, bytes.Repeat([]byte{0x5a}, 1000)...)
	im, err := Open(bytes.NewReader(buf), off, int64(len(raw)), o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	if c, err := ProbeCompression(bytes.NewReader(buf), off); err != nil || c != im.Compression() {
		tb.Fatalf("ProbeCompression = %v, %v; Open says %v", c, err, im.Compression())
	}
	return im
}

// checkImage walks im and compares it with src; thorough adds lookups of
// absent names and reads at random offsets.
func checkImage(t *testing.T, im *Image, src *source, xattrs, thorough bool) {
	root, err := im.Root()
	must(t, err)
	seen := map[string]bool{}
	byIno := map[uint64]*Inode{} // source inode -> image inode, for hard links
	var walk func(dir *Inode, path string)
	check := func(path string, ino *Inode) {
		seen[path] = true
		w := src.want[path]
		if w == nil {
			t.Errorf("%q: in the image, not in the source", path)
			return
		}
		if err := compareInode(im, ino, w, xattrs, thorough); err != nil {
			t.Errorf("%q: %v", path, err)
		}
		if w.nlink > 1 && w.srcIno != 0 {
			if o := byIno[w.srcIno]; o != nil && (o.Ref != ino.Ref || o.Number != ino.Number) {
				t.Errorf("%q: hard link to inode %d at %#x, its other name has %d at %#x", path, ino.Number, ino.Ref, o.Number, o.Ref)
			}
			byIno[w.srcIno] = ino
		}
		if ino.Type == Dir {
			walk(ino, path)
		}
	}
	walk = func(dir *Inode, path string) {
		ents, err := im.ReadDir(dir)
		if err != nil {
			t.Errorf("ReadDir %q: %v", path, err)
			return
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name)
		}
		if wantNames := src.children(path); !reflect.DeepEqual(names, wantNames) && !(len(names) == 0 && len(wantNames) == 0) {
			t.Errorf("ReadDir %q: %d names %q..., want %d", path, len(names), head(names), len(wantNames))
		}
		for _, e := range ents {
			p := e.Name
			if path != "" {
				p = path + "/" + e.Name
			}
			ino, err := im.Lookup(dir, e.Name)
			if err != nil {
				t.Errorf("Lookup %q: %v", p, err)
				continue
			}
			if ino.Ref != e.Ref || ino.Number != e.Number || ino.Type != e.Type {
				t.Errorf("Lookup %q = %#x #%d %s, ReadDir says %#x #%d %s", p, ino.Ref, ino.Number, ino.Type, e.Ref, e.Number, e.Type)
			}
			again, err := im.Inode(e.Ref)
			if err != nil || !reflect.DeepEqual(again, ino) {
				t.Errorf("Inode(%#x) = %+v, %v; Lookup gave %+v", e.Ref, again, err, ino)
			}
			// Names that sort around this one are absent.
			for _, miss := range []string{e.Name + "\x01", e.Name[:len(e.Name)-1], "\x01" + e.Name} {
				if !thorough || miss == e.Name || contains(names, miss) {
					continue
				}
				if _, err := im.Lookup(dir, miss); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Lookup %q in %q: %v, want not found", miss, path, err)
				}
			}
			check(p, ino)
		}
	}
	check("", root)
	for p := range src.want {
		if !seen[p] {
			t.Errorf("%q: in the source, not in the image", p)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", "zzzz", strings.Repeat("z", 300)} {
		if _, err := im.Lookup(root, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lookup(root, %q): %v, want not found", name, err)
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func contains(s []string, x string) bool {
	i := sort.SearchStrings(s, x)
	return i < len(s) && s[i] == x
}

// compareInode compares one inode (and its content, target, xattrs) with w.
func compareInode(im *Image, ino *Inode, w *want, xattrs, thorough bool) error {
	if ino.Type != w.typ {
		return fmt.Errorf("type %s, want %s", ino.Type, w.typ)
	}
	if ino.Mode() != modeBits[w.typ]|uint32(w.perm) {
		return fmt.Errorf("mode %o, want %o", ino.Mode(), modeBits[w.typ]|uint32(w.perm))
	}
	if ino.UID != w.uid || ino.GID != w.gid {
		return fmt.Errorf("owner %d:%d, want %d:%d", ino.UID, ino.GID, w.uid, w.gid)
	}
	if ino.Mtime != w.mtime {
		return fmt.Errorf("mtime %d, want %d", ino.Mtime, w.mtime)
	}
	if ino.Nlink != w.nlink {
		return fmt.Errorf("nlink %d, want %d", ino.Nlink, w.nlink)
	}
	if ino.Rdev != w.rdev {
		return fmt.Errorf("rdev %#x, want %#x", ino.Rdev, w.rdev)
	}
	if ino.Number == 0 || ino.Number > im.InodeCount() {
		return fmt.Errorf("inode number %d of %d", ino.Number, im.InodeCount())
	}
	if ino.Type != Dir && ino.Size != w.size {
		return fmt.Errorf("size %d, want %d", ino.Size, w.size)
	}
	var wantX []Xattr
	if xattrs {
		wantX = w.xattrs
	}
	gotX, err := im.Xattrs(ino)
	if err != nil {
		return err
	}
	sort.Slice(gotX, func(i, j int) bool { return gotX[i].Name < gotX[j].Name })
	if len(gotX) != len(wantX) || len(gotX) > 0 && !reflect.DeepEqual(normX(gotX), normX(wantX)) {
		return fmt.Errorf("xattrs %v, want %v", names(gotX), names(wantX))
	}
	switch ino.Type {
	case Symlink:
		got, err := im.Readlink(ino)
		if err != nil || got != w.target {
			return fmt.Errorf("Readlink = %.40q, %v; want %.40q", got, err, w.target)
		}
	case File:
		return compareContent(im, ino, w.data, thorough)
	}
	return nil
}

// normX makes empty values compare equal to nil ones.
func normX(xs []Xattr) []Xattr {
	out := make([]Xattr, len(xs))
	for i, x := range xs {
		out[i] = Xattr{Name: x.Name, Value: append([]byte{}, x.Value...)}
	}
	return out
}

func names(xs []Xattr) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%s(%d)", x.Name, len(x.Value)))
	}
	return out
}

// compareContent reads f whole, in odd chunks and, if thorough, at random
// offsets.
func compareContent(im *Image, f *Inode, data []byte, thorough bool) error {
	size := int64(len(data))
	all := make([]byte, size+10)
	n, err := im.ReadAt(f, all, 0)
	if n != len(data) || err != io.EOF {
		return fmt.Errorf("ReadAt of all = %d, %v; want %d, EOF", n, err, len(data))
	}
	if err := sameBytes(all[:n], data); err != nil {
		return fmt.Errorf("whole read: %v", err)
	}
	var got []byte
	chunk := make([]byte, 70001)
	for off := int64(0); off < size; {
		n, err := im.ReadAt(f, chunk, off)
		if err != nil && !(err == io.EOF && off+int64(n) == size) {
			return fmt.Errorf("ReadAt at %d: %d, %v", off, n, err)
		}
		got = append(got, chunk[:n]...)
		off += int64(n)
	}
	if err := sameBytes(got, data); err != nil {
		return fmt.Errorf("chunked read: %v", err)
	}
	r := rand.New(rand.NewPCG(uint64(size), 1))
	for i := 0; i < 20 && size > 0 && thorough; i++ {
		off := r.Int64N(size)
		p := make([]byte, r.IntN(300000))
		n, err := im.ReadAt(f, p, off)
		wantN := min(int64(len(p)), size-off)
		if int64(n) != wantN || (wantN < int64(len(p))) != (err == io.EOF) || err != nil && err != io.EOF {
			return fmt.Errorf("ReadAt(%d bytes at %d) = %d, %v", len(p), off, n, err)
		}
		if err := sameBytes(p[:n], data[off:off+int64(n)]); err != nil {
			return fmt.Errorf("read at %d: %v", off, err)
		}
	}
	if n, err := im.ReadAt(f, chunk[:1], size); n != 0 || err != io.EOF {
		return fmt.Errorf("ReadAt at the end = %d, %v; want 0, EOF", n, err)
	}
	if n, err := im.ReadAt(f, chunk[:1], size+5); n != 0 || err != io.EOF {
		return fmt.Errorf("ReadAt past the end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := im.ReadAt(f, chunk[:1], -1); err == nil {
		return errors.New("ReadAt at -1 succeeded")
	}
	return nil
}

// checkDirSizes compares the directory sizes with unsquashfs's listing.
func checkDirSizes(t *testing.T, im *Image, raw []byte) {
	path := filepath.Join(t.TempDir(), "image.sqfs")
	must(t, os.WriteFile(path, raw, 0o644))
	out, err := exec.Command("unsquashfs", "-lln", "-d", "", path).Output()
	if err != nil {
		t.Skipf("unsquashfs: %v", err)
	}
	sizes := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || !strings.HasPrefix(f[0], "d") {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		must(t, err)
		sizes[strings.TrimPrefix(f[5], "/")] = n
	}
	if len(sizes) < 10 {
		t.Fatalf("unsquashfs listed %d directories:\n%s", len(sizes), out)
	}
	root, err := im.Root()
	must(t, err)
	for p, want := range sizes {
		d := root
		for _, name := range strings.Split(p, "/") {
			if name == "" {
				continue
			}
			if d, err = im.Lookup(d, name); err != nil {
				t.Fatalf("Lookup %q: %v", p, err)
			}
		}
		if d.Size != want {
			t.Errorf("directory %q: size %d, unsquashfs says %d", p, d.Size, want)
		}
	}
}

// TestConcurrentReaders walks one image from many goroutines at once with
// caches small enough to evict all the time.
func TestConcurrentReaders(t *testing.T) {
	for _, args := range [][]string{{"-comp", "gzip", "-b", "4K"}, {"-comp", "zstd"}} {
		src, raw := sharedImage(t, args...)
		im := openAt(t, raw, 0, Options{CacheBlocks: 3, MetaBlocks: 4, ReadAhead: 4})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				checkImage(t, im, src, src.xattrs, false)
			}()
		}
		wg.Wait()
	}
}

// TestAPIErrors checks the errors of calls on the wrong kind of inode.
func TestAPIErrors(t *testing.T) {
	src, raw := sharedImage(t, "-comp", "gzip")
	im := openAt(t, raw, 0, Options{})
	root, err := im.Root()
	must(t, err)
	files, err := im.Lookup(root, "files")
	must(t, err)
	f, err := im.Lookup(files, "size-100")
	must(t, err)
	if _, err := im.Lookup(f, "x"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lookup in a file: %v, want an error other than not found", err)
	}
	if _, err := im.ReadDir(f); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
	if _, err := im.ReadAt(root, make([]byte, 1), 0); err == nil {
		t.Error("ReadAt of a directory succeeded")
	}
	if _, err := im.Readlink(f); err == nil {
		t.Error("Readlink of a file succeeded")
	}
	if _, err := im.Inode(Ref(im.sb.dirTable-im.sb.inodeTable) << 16); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Inode past the inode table: %v, want ErrCorrupt", err)
	}
	if im.BlockSize() != 131072 || im.Compression() != Gzip || im.BytesUsed() > uint64(len(raw)) || im.InodeCount() < uint32(len(src.want)-10) {
		t.Errorf("BlockSize %d Compression %v BytesUsed %d InodeCount %d", im.BlockSize(), im.Compression(), im.BytesUsed(), im.InodeCount())
	}
}
