package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
)

// MaxNameLen is the longest name a directory entry may have.
const MaxNameLen = 256

// Options tune an Image's caches.
type Options struct {
	// CacheBlocks is how many decompressed data and fragment blocks are
	// kept; 0 means 16.
	CacheBlocks int
	// MetaBlocks is how many decompressed metadata blocks are kept; 0
	// means 256.
	MetaBlocks int
	// ReadAhead is how many blocks after the last one a read touched are
	// decompressed in the background into the cache if not there; 0 or
	// less means none.
	ReadAhead int
}

// Image is an open SquashFS image. It is safe for concurrent use.
type Image struct {
	r   io.ReaderAt
	off int64
	sb  superblock
	dec decompressor

	inodeEnd uint64 // the inode table is [sb.inodeTable, inodeEnd)
	dirEnd   uint64 // the directory table is [sb.dirTable, dirEnd)

	ids      []uint32
	fragPtrs []uint64 // metadata blocks of the fragment table

	xattrTable uint64   // where the xattr key/value metadata starts
	xattrIDs   uint32   // entries in the xattr id table
	xattrPtrs  []uint64 // metadata blocks of the xattr id table

	meta      *cache
	data      *cache
	readAhead int
	sem       chan struct{} // bounds the background decompressions

	scratch sync.Pool // *[]byte of maxStored bytes, for stored blocks
	indexes indexCache
}

// maxStored is the largest stored block: a data block of the block size or
// a metadata block with its header.
func (im *Image) maxStored() int {
	return max(int(im.sb.blockSize), metaMaxStored)
}

// Open opens the SquashFS image that starts at off in r and has size bytes
// available there. It reads the superblock and the id, fragment and xattr
// lookup tables and checks the root inode.
func Open(r io.ReaderAt, off, size int64, o Options) (*Image, error) {
	if off < 0 || size < 0 || size > math.MaxInt64-off {
		return nil, fmt.Errorf("opening a squashfs image at %d of %d bytes: bad range", off, size)
	}
	var raw [superblockSize]byte
	if size < superblockSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	if err := readSuperblock(r, off, raw[:]); err != nil {
		return nil, err
	}
	sb, err := parseSuperblock(raw[:])
	if err != nil {
		return nil, err
	}
	if !sb.compression.Supported() {
		return nil, fmt.Errorf("%w: cannot decompress %s", ErrUnsupported, sb.compression)
	}
	if sb.bytesUsed < superblockSize || sb.bytesUsed > uint64(size) {
		return nil, corrupt("superblock: %d bytes used, but %d available", sb.bytesUsed, size)
	}
	if sb.inodes == 0 {
		return nil, corrupt("superblock: no inodes")
	}
	im := &Image{r: r, off: off, sb: sb, readAhead: max(o.ReadAhead, 0)}
	im.scratch.New = func() any {
		b := make([]byte, im.maxStored())
		return &b
	}
	cacheBlocks, metaBlocks := o.CacheBlocks, o.MetaBlocks
	if cacheBlocks <= 0 {
		cacheBlocks = 16
	}
	if metaBlocks <= 0 {
		metaBlocks = 256
	}
	im.meta = newCache(metaBlocks, metaSize, im.loadMeta)
	im.data = newCache(cacheBlocks, int(sb.blockSize), im.loadData)
	im.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	im.indexes.init()

	if err := im.openCompressor(); err != nil {
		return nil, err
	}
	if err := im.readTables(); err != nil {
		return nil, err
	}
	root, err := im.Root()
	if err != nil {
		return nil, err
	}
	if root.Type != Dir {
		return nil, corrupt("root inode %#x is not a directory", uint64(sb.root))
	}
	return im, nil
}

// openCompressor reads the compressor options, if any, and makes the
// decompressor.
func (im *Image) openCompressor() error {
	var opts []byte
	if im.sb.flags&flagCompressorOpts != 0 {
		// The options are one metadata block right after the superblock,
		// stored uncompressed by mksquashfs; a compressed one could only
		// be read with the options, so it is refused.
		var hdr [2]byte
		if err := im.readRaw(hdr[:], superblockSize); err != nil {
			return fmt.Errorf("reading the compressor options: %w", err)
		}
		h := binary.LittleEndian.Uint16(hdr[:])
		n := uint64(h &^ metaUncompressed)
		if h&metaUncompressed == 0 || n == 0 || n > 64 {
			return corrupt("compressor options: header %#x", h)
		}
		opts = make([]byte, n)
		if err := im.readRaw(opts, superblockSize+2); err != nil {
			return fmt.Errorf("reading the compressor options: %w", err)
		}
	}
	dec, err := newDecompressor(im.sb.compression, opts, im.maxStored())
	if err != nil {
		return err
	}
	im.dec = dec
	return nil
}

// readRaw reads len(p) stored bytes at pos, which must lie inside the image.
func (im *Image) readRaw(p []byte, pos uint64) error {
	if pos > im.sb.bytesUsed || uint64(len(p)) > im.sb.bytesUsed-pos {
		return corrupt("%d bytes at %d lie outside the image (%d bytes)", len(p), pos, im.sb.bytesUsed)
	}
	n, err := im.r.ReadAt(p, im.off+int64(pos))
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corrupt("image truncated at %d", pos+uint64(n))
	}
	return err
}

// BlockSize returns the image's data block size.
func (im *Image) BlockSize() uint32 { return im.sb.blockSize }

// Compression returns the image's compression.
func (im *Image) Compression() Compression { return im.sb.compression }

// InodeCount returns the number of inodes in the image.
func (im *Image) InodeCount() uint32 { return im.sb.inodes }

// BytesUsed returns the size of the image, without the padding after it.
func (im *Image) BytesUsed() uint64 { return im.sb.bytesUsed }

// Root returns the root directory's inode.
func (im *Image) Root() (*Inode, error) {
	ino, err := im.Inode(im.sb.root)
	if err != nil {
		return nil, fmt.Errorf("reading the root inode: %w", err)
	}
	return ino, nil
}
