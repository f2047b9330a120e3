// Package squashfs reads SquashFS 4.0 images: the superblock and its tables,
// inodes, directories, file contents (data blocks, fragments, sparse blocks),
// symbolic links and extended attributes, for gzip, lz4 and zstd images and
// uncompressed ones.
//
// An Image is safe for concurrent use by many goroutines. Decompressed
// metadata blocks and data/fragment blocks are kept in two bounded caches
// that also make concurrent readers of one block wait for a single
// decompression; Options.ReadAhead decompresses the next blocks of a file
// in the background. gzip blocks are inflated with libdeflate when the
// package is built with cgo and the build tag libdeflate, otherwise with
// klauspost/compress.
//
// Images are treated as hostile: every field is checked against what the
// format allows before it is used, every read stays inside the image, and
// no allocation is sized by a field beyond the format's own limits. A bad
// image yields an error wrapping ErrCorrupt that names what was bad.
package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// ErrCorrupt is wrapped by every error that reports an image that breaks the
// format's rules.
var ErrCorrupt = errors.New("corrupt squashfs image")

// ErrUnsupported is wrapped by every error that reports a valid image this
// package cannot read (another format version, an unsupported compression).
var ErrUnsupported = errors.New("unsupported squashfs image")

// corrupt returns an error wrapping ErrCorrupt with the formatted message.
func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// Compression is the compressor an image was made with, as the superblock
// numbers it.
type Compression uint16

// The compressors of SquashFS 4.0.
const (
	Gzip Compression = 1
	LZMA Compression = 2
	LZO  Compression = 3
	XZ   Compression = 4
	LZ4  Compression = 5
	Zstd Compression = 6
)

// String returns the name mksquashfs -comp takes for c.
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case LZMA:
		return "lzma"
	case LZO:
		return "lzo"
	case XZ:
		return "xz"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression %d", uint16(c))
}

// Supported reports whether this package can decompress c.
func (c Compression) Supported() bool {
	return c == Gzip || c == LZ4 || c == Zstd
}

// Limits and constants of the format.
const (
	superblockSize = 96
	magic          = 0x73717368 // "hsqs"
	metaSize       = 8192       // decompressed size of a full metadata block
	metaMaxStored  = metaSize + 2
	minBlockLog    = 12 // 4 KiB
	maxBlockLog    = 20 // 1 MiB
	maxNameLen     = MaxNameLen
	maxDirCount    = 256
	maxSymlinkLen  = 4096
	invalidBlock   = ^uint64(0)
	invalidFrag    = ^uint32(0)
	invalidXattr   = ^uint32(0)

	metaUncompressed  = 1 << 15
	blockUncompressed = 1 << 24
	blockSizeMask     = blockUncompressed - 1
)

// Superblock flags.
const (
	flagNoFragments    = 0x0010
	flagCompressorOpts = 0x0400
)

// superblock is the decoded, checked superblock.
type superblock struct {
	inodes        uint32
	blockSize     uint32
	blockLog      uint16
	fragments     uint32
	compression   Compression
	flags         uint16
	noIDs         uint16
	root          Ref
	bytesUsed     uint64
	idTable       uint64
	xattrIDTable  uint64
	inodeTable    uint64
	dirTable      uint64
	fragmentTable uint64
	lookupTable   uint64
}

// parseSuperblock decodes and checks the fields of b that do not depend on
// the rest of the image.
func parseSuperblock(b []byte) (superblock, error) {
	var sb superblock
	if len(b) < superblockSize {
		return sb, corrupt("superblock: %d bytes, want %d", len(b), superblockSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != magic {
		return sb, corrupt("superblock: bad magic %#x", m)
	}
	if major, minor := le.Uint16(b[28:]), le.Uint16(b[30:]); major != 4 || minor != 0 {
		return sb, fmt.Errorf("%w: squashfs version %d.%d, want 4.0", ErrUnsupported, major, minor)
	}
	sb = superblock{
		inodes:        le.Uint32(b[4:]),
		blockSize:     le.Uint32(b[12:]),
		fragments:     le.Uint32(b[16:]),
		compression:   Compression(le.Uint16(b[20:])),
		blockLog:      le.Uint16(b[22:]),
		flags:         le.Uint16(b[24:]),
		noIDs:         le.Uint16(b[26:]),
		root:          Ref(le.Uint64(b[32:])),
		bytesUsed:     le.Uint64(b[40:]),
		idTable:       le.Uint64(b[48:]),
		xattrIDTable:  le.Uint64(b[56:]),
		inodeTable:    le.Uint64(b[64:]),
		dirTable:      le.Uint64(b[72:]),
		fragmentTable: le.Uint64(b[80:]),
		lookupTable:   le.Uint64(b[88:]),
	}
	bs := sb.blockSize
	if bs < 1<<minBlockLog || bs > 1<<maxBlockLog || bs&(bs-1) != 0 {
		return sb, corrupt("superblock: block size %d is not a power of two in 4 KiB..1 MiB", bs)
	}
	if want := uint16(bits.TrailingZeros32(bs)); sb.blockLog != want {
		return sb, corrupt("superblock: block log %d does not match block size %d", sb.blockLog, bs)
	}
	if sb.compression == 0 {
		return sb, corrupt("superblock: compression 0")
	}
	return sb, nil
}

// ProbeCompression reads the superblock of the image that starts at off in
// r, checks it and returns the image's compression, which may be one this
// package does not support (see Compression.Supported).
func ProbeCompression(r io.ReaderAt, off int64) (Compression, error) {
	var b [superblockSize]byte
	if err := readSuperblock(r, off, b[:]); err != nil {
		return 0, err
	}
	sb, err := parseSuperblock(b[:])
	if err != nil {
		return 0, fmt.Errorf("reading the superblock at %d: %w", off, err)
	}
	return sb.compression, nil
}

// readSuperblock reads the superblock's bytes at off into b.
func readSuperblock(r io.ReaderAt, off int64, b []byte) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corrupt("superblock at %d: image of %d bytes", off, n)
	}
	return fmt.Errorf("reading the superblock at %d: %w", off, err)
}
