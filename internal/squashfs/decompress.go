package squashfs

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decompressor decompresses whole blocks; it is safe for concurrent use.
type decompressor interface {
	// decompress decompresses src into dst and returns the decompressed
	// length; output that does not fit in len(dst) is an error.
	decompress(dst, src []byte) (int, error)
}

// newDecompressor returns the decompressor for c, checked against the
// compressor options opts (nil when the image stores none). maxOut is the
// largest output any block may have.
func newDecompressor(c Compression, opts []byte, maxOut int) (decompressor, error) {
	switch c {
	case Gzip:
		return newZlib(), nil
	case LZ4:
		// mksquashfs always stores lz4's options: the format version
		// (1, the legacy block format) and flags (high compression).
		if len(opts) < 8 {
			return nil, corrupt("lz4 compressor options: %d bytes, want 8", len(opts))
		}
		if v := binary.LittleEndian.Uint32(opts); v != 1 {
			return nil, fmt.Errorf("%w: lz4 format version %d", ErrUnsupported, v)
		}
		return lz4Decompressor{}, nil
	case Zstd:
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(uint64(maxOut)),
			zstd.WithDecoderMaxWindow(uint64(2*maxOut)))
		if err != nil {
			return nil, fmt.Errorf("making the zstd decoder: %w", err)
		}
		return zstdDecompressor{d}, nil
	}
	return nil, fmt.Errorf("%w: cannot decompress %s", ErrUnsupported, c)
}

// lz4Decompressor decompresses lz4 blocks (no frame).
type lz4Decompressor struct{}

func (lz4Decompressor) decompress(dst, src []byte) (int, error) {
	return lz4.UncompressBlock(src, dst)
}

// zstdDecompressor decompresses zstd frames with a shared decoder, which
// runs as many decompressions at once as there are CPUs.
type zstdDecompressor struct{ d *zstd.Decoder }

func (z zstdDecompressor) decompress(dst, src []byte) (int, error) {
	out, err := z.d.DecodeAll(src, dst[:0])
	if err != nil {
		return 0, err
	}
	if len(out) > 0 && &out[0] != &dst[0] {
		return 0, fmt.Errorf("zstd output of %d bytes does not fit in %d", len(out), len(dst))
	}
	return len(out), nil
}
