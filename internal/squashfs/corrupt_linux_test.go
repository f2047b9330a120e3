package squashfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// smallTree makes a small tree: a few files, one large enough for data
// blocks and a tail, a directory, a symbolic link and an xattr.
func smallTree(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "small")
	must(tb, os.MkdirAll(filepath.Join(dir, "sub/deeper"), 0o755))
	must(tb, os.WriteFile(filepath.Join(dir, "a"), []byte("hello"), 0o644))
	must(tb, os.WriteFile(filepath.Join(dir, "sub/big"), content(9, 9000), 0o600))
	must(tb, os.WriteFile(filepath.Join(dir, "sub/deeper/c"), content(10, 100), 0o644))
	must(tb, os.Symlink("sub/big", filepath.Join(dir, "link")))
	unix.Setxattr(filepath.Join(dir, "a"), "user.x", []byte("y"), 0) // where the file system takes it
	return dir
}

// smallImage packs smallTree with args.
func smallImage(tb testing.TB, args ...string) []byte {
	tb.Helper()
	needMksquashfs(tb)
	raw, err := os.ReadFile(mksquashfs(tb, smallTree(tb), nil, append([]string{"-b", "4K"}, args...)...))
	must(tb, err)
	return raw
}

// walkAll opens raw and reads everything in it, returning the first error.
// Its work is bounded: hostile images may link directories in cycles.
func walkAll(raw []byte, size int64) error {
	im, err := Open(bytes.NewReader(raw), 0, size, Options{CacheBlocks: 4, MetaBlocks: 8, ReadAhead: 2})
	if err != nil {
		return err
	}
	root, err := im.Root()
	if err != nil {
		return err
	}
	budget := 2000        // inodes to visit
	bytesLeft := 16 << 20 // bytes to read
	buf := make([]byte, 64<<10)
	var first error
	keep := func(err error) {
		if first == nil && err != nil && err != io.EOF {
			first = err
		}
	}
	var walk func(dir *Inode, depth int)
	walk = func(dir *Inode, depth int) {
		ents, err := im.ReadDir(dir)
		keep(err)
		keep(pageThrough(im, dir))
		for _, e := range ents {
			if budget--; budget < 0 || depth > 16 {
				return
			}
			ino, err := im.Lookup(dir, e.Name)
			if err != nil {
				keep(err)
				if ino, err = im.Inode(e.Ref); err != nil {
					keep(err)
					continue
				}
			}
			_, err = im.Xattrs(ino)
			keep(err)
			switch ino.Type {
			case Dir:
				walk(ino, depth+1)
			case Symlink:
				_, err := im.Readlink(ino)
				keep(err)
			case File:
				for off, n := int64(0), 0; off < int64(ino.Size) && bytesLeft > 0; off += int64(n) {
					n, err = im.ReadAt(ino, buf, off)
					bytesLeft -= len(buf)
					if err != nil {
						keep(err)
						break
					}
				}
			}
		}
	}
	walk(root, 0)
	return first
}

// pageThrough lists dir with ListFrom three entries at a time, going on
// from each page's resume point, as the FUSE server pages through it: on
// any image every page must go forward, so that no listing loops
// (TestListFrom checks what valid images list).
func pageThrough(im *Image, dir *Inode) error {
	pos := uint64(0)
	var res DirResume
	for {
		n := 0
		last := pos
		err := im.ListFrom(dir, pos, &res, func(e DirEntry, end uint64) bool {
			if end <= last {
				panic(fmt.Sprintf("ListFrom(%d) gave an entry ending at %d, not after %d", pos, end, last))
			}
			if n == 3 { // refused, as an entry that does not fit: the next page starts with it
				return false
			}
			last, n = end, n+1
			return true
		})
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		pos = last
	}
	return nil
}

// put writes v little-endian at off of a copy of raw.
func put(raw []byte, off int, v any) []byte {
	b := append([]byte{}, raw...)
	var w bytes.Buffer
	binary.Write(&w, binary.LittleEndian, v)
	copy(b[off:], w.Bytes())
	return b
}

func TestCorruptImages(t *testing.T) {
	// Uncompressed metadata puts every structure at a known place.
	raw := smallImage(t, "-noI", "-noD", "-noF", "-noX", "-noId")
	if err := walkAll(raw, int64(len(raw))); err != nil {
		t.Fatalf("the image itself: %v", err)
	}
	sb, err := parseSuperblock(raw)
	must(t, err)
	rootAt := int(sb.inodeTable) + 2 + int(sb.root&0xffff) // in the first metadata block
	le := binary.LittleEndian
	rootDir := int(sb.dirTable) + 2 + int(le.Uint16(raw[rootAt+16+10:])) // basic dir: offset field
	for _, tc := range []struct {
		name  string
		image []byte
		size  int64 // 0: the image's length
		want  error
	}{
		{"magic", put(raw, 0, uint32(0x12345678)), 0, ErrCorrupt},
		{"version 3.1", put(raw, 28, []uint16{3, 1}), 0, ErrUnsupported},
		{"block size not a power of two", put(raw, 12, uint32(3<<12)), 0, ErrCorrupt},
		{"block size 2 MiB", put(put(raw, 12, uint32(2<<20)), 22, uint16(21)), 0, ErrCorrupt},
		{"block log", put(raw, 22, uint16(13)), 0, ErrCorrupt},
		{"xz", put(raw, 20, uint16(XZ)), 0, ErrUnsupported},
		{"lzo", put(raw, 20, uint16(LZO)), 0, ErrUnsupported},
		{"compression 0", put(raw, 20, uint16(0)), 0, ErrCorrupt},
		{"compression 99", put(raw, 20, uint16(99)), 0, ErrUnsupported},
		{"bytes used past the size", put(raw, 40, uint64(len(raw)+1)), 0, ErrCorrupt},
		{"truncated", raw, int64(sb.bytesUsed) - 1, ErrCorrupt},
		{"shorter than a superblock", raw[:50], 0, ErrCorrupt},
		{"no inodes", put(raw, 4, uint32(0)), 0, ErrCorrupt},
		{"no ids", put(raw, 26, uint16(0)), 0, ErrCorrupt},
		{"id table at the end", put(raw, 48, sb.bytesUsed), 0, ErrCorrupt},
		{"id table pointer", put(raw, int(sb.idTable), sb.bytesUsed+5), 0, ErrCorrupt},
		{"inode table after directories", put(raw, 64, sb.dirTable), 0, ErrCorrupt},
		{"inode table in the superblock", put(raw, 64, uint64(10)), 0, ErrCorrupt},
		{"directory table past the fragments", put(raw, 72, sb.fragmentTable+8), 0, ErrCorrupt},
		{"many fragments", put(raw, 16, uint32(1<<31)), 0, ErrCorrupt},
		{"fragment table pointer", put(raw, int(sb.fragmentTable), uint64(3)), 0, ErrCorrupt},
		{"export table", put(raw, 88, sb.bytesUsed-1), 0, ErrCorrupt},
		{"xattr id table", put(raw, 56, sb.bytesUsed-3), 0, ErrCorrupt},
		{"root past the inode table", put(raw, 32, uint64(sb.dirTable-sb.inodeTable)<<16), 0, ErrCorrupt},
		{"root offset past its block", put(raw, 32, uint64(8191)), 0, ErrCorrupt},
		{"root inode type", put(raw, rootAt, uint16(99)), 0, ErrCorrupt},
		{"root not a directory", put(raw, rootAt, uint16(6)), 0, ErrCorrupt},
		{"root uid index", put(raw, rootAt+4, uint16(40)), 0, ErrCorrupt},
		{"root inode number 0", put(raw, rootAt+12, uint32(0)), 0, ErrCorrupt},
		{"root inode number too big", put(raw, rootAt+12, uint32(1000)), 0, ErrCorrupt},
		{"root listing offset", put(raw, rootAt+16+10, uint16(9000)), 0, ErrCorrupt},
		{"root listing block", put(raw, rootAt+16, uint32(1<<30)), 0, ErrCorrupt},
		{"metadata block length 0", put(raw, int(sb.inodeTable), uint16(0x8000)), 0, ErrCorrupt},
		{"metadata block too long", put(raw, int(sb.inodeTable), uint16(0x8000|9000)), 0, ErrCorrupt},
		{"metadata block not compressed", put(raw, int(sb.inodeTable), uint16(100)), 0, ErrCorrupt},
		{"directory header count", put(raw, rootDir, uint32(300)), 0, ErrCorrupt},
		{"directory size short of its listing", put(raw, rootAt+16+8, uint16(20)), 0, ErrCorrupt},
		{"directory size ends inside an entry", put(raw, rootAt+16+8, uint16(3+12+8+2)), 0, ErrCorrupt},
		{"directory entry name size", put(raw, rootDir+12+6, uint16(300)), 0, ErrCorrupt},
		{"directory entry type", put(raw, rootDir+12+4, uint16(9)), 0, ErrCorrupt},
		{"directory entry name with a slash", put(raw, rootDir+12+8, byte('/')), 0, ErrCorrupt},
		{"directory entry inode offset", put(raw, rootDir+12, uint16(8200)), 0, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = int64(len(tc.image))
			}
			err := walkAll(tc.image, size)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

func TestCorruptData(t *testing.T) {
	raw := smallImage(t, "-noI", "-noF", "-noX", "-noId") // data compressed
	im, err := Open(bytes.NewReader(raw), 0, int64(len(raw)), Options{})
	must(t, err)
	big := lookupPath(t, im, "sub", "big")
	if big.start == 0 || big.Size != 9000 {
		t.Fatalf("sub/big: start %d size %d", big.start, big.Size)
	}
	wordAt := int(big.tailPos) + 2 + int(big.tailOff) // the first size word
	word := binary.LittleEndian.Uint32(raw[wordAt:])
	for _, tc := range []struct {
		name  string
		image []byte
	}{
		{"size word bit 25", put(raw, wordAt, word|1<<25)},
		{"stored size past the block size", put(raw, wordAt, uint32(5000))},
		{"block past the image", put(raw, wordAt+4, uint32(4096)|blockUncompressed)},
		{"garbage compressed data", put(raw, int(big.start), bytes.Repeat([]byte{0xff}, 64))},
		{"uncompressed block short", put(raw, wordAt, word&blockSizeMask|blockUncompressed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Open(bytes.NewReader(tc.image), 0, int64(len(tc.image)), Options{})
			must(t, err)
			if tc.name == "garbage compressed data" && word&blockUncompressed != 0 {
				t.Skip("the block is stored uncompressed")
			}
			_, err = im.ReadAt(big, make([]byte, 9000), 0)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadAt: %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// TestUnsupportedCompression checks images of the compressors this
// package does not read.
func TestUnsupportedCompression(t *testing.T) {
	for _, c := range []Compression{XZ, LZO} {
		raw := smallImage(t, "-comp", c.String())
		if got, err := ProbeCompression(bytes.NewReader(raw), 0); got != c || err != nil {
			t.Errorf("ProbeCompression = %v, %v; want %v", got, err, c)
		}
		if _, err := Open(bytes.NewReader(raw), 0, int64(len(raw)), Options{}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Open of an %s image: %v, want ErrUnsupported", c, err)
		}
	}
	if _, err := ProbeCompression(bytes.NewReader([]byte("hsqs")), 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ProbeCompression of 4 bytes: %v, want ErrCorrupt", err)
	}
}

func TestCompressionNames(t *testing.T) {
	for _, tc := range []struct {
		c         Compression
		name      string
		supported bool
	}{
		{Gzip, "gzip", true}, {LZMA, "lzma", false}, {LZO, "lzo", false}, {XZ, "xz", false},
		{LZ4, "lz4", true}, {Zstd, "zstd", true}, {0, "compression 0", false}, {77, "compression 77", false},
	} {
		if tc.c.String() != tc.name || tc.c.Supported() != tc.supported {
			t.Errorf("%d: %q %v, want %q %v", uint16(tc.c), tc.c.String(), tc.c.Supported(), tc.name, tc.supported)
		}
	}
}
