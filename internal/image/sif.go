package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/msg"
)

// The SIF global header (spec version 01) as github.com/sylabs/sif/v2 reads
// it: 128 little-endian bytes, the descriptor table fields at byte 80.
const (
	sifHeaderSize = 128
	// sifDescriptorSize is the on-disk size of one descriptor.
	sifDescriptorSize = 585
	// maxSIFDescriptors bounds the descriptor count launch accepts. sif/v2
	// allocates the whole table (and a second buffer of its size) before
	// reading it; real images have 48 (the default) or a few hundred.
	maxSIFDescriptors = 1 << 14
)

// sifHeader is the part of the SIF global header LoadSIF checks.
type sifHeader struct {
	descFree, descTotal, descOffset, descSize, dataOffset, dataSize int64
}

// parseSIFHeader decodes the descriptor and data fields of a SIF header.
func parseSIFHeader(b []byte) sifHeader {
	i := func(off int) int64 { return int64(binary.LittleEndian.Uint64(b[off:])) }
	return sifHeader{descFree: i(80), descTotal: i(88), descOffset: i(96), descSize: i(104),
		dataOffset: i(112), dataSize: i(120)}
}

// within reports whether [off, off+n) lies inside a file of size bytes,
// without overflowing.
func within(off, n, size int64) bool {
	return off >= 0 && n >= 0 && off <= size && n <= size-off
}

// checkSIFHeader checks the header of a SIF file of size bytes: the
// descriptor count, the descriptor table and the data area must make sense
// and lie inside the file. sif/v2 trusts them: a huge count makes it
// allocate without bound ("fatal error: runtime: out of memory", which no
// recover catches) and a negative offset and size make it slice out of
// range.
func checkSIFHeader(path string, head []byte, size int64) error {
	if len(head) < sifHeaderSize || size < sifHeaderSize {
		return fmt.Errorf("SIF %s is truncated: its header needs %d bytes, the file has %d", path, sifHeaderSize, size)
	}
	if !bytes.Equal(head[32:42], []byte("SIF_MAGIC\x00")) {
		return fmt.Errorf("%s is not a SIF file (no SIF magic in its header)", path)
	}
	h := parseSIFHeader(head)
	switch {
	case h.descTotal < 0 || h.descTotal > maxSIFDescriptors:
		return fmt.Errorf("SIF %s is damaged: its header says %d descriptors (launch reads at most %d)",
			path, h.descTotal, maxSIFDescriptors)
	case h.descFree < 0 || h.descFree > h.descTotal:
		return fmt.Errorf("SIF %s is damaged: its header says %d of %d descriptors are free", path, h.descFree, h.descTotal)
	case h.descSize < h.descTotal*sifDescriptorSize:
		return fmt.Errorf("SIF %s is damaged: its descriptor table is %d bytes, %d descriptors need %d",
			path, h.descSize, h.descTotal, h.descTotal*sifDescriptorSize)
	case h.descOffset < sifHeaderSize || !within(h.descOffset, h.descSize, size):
		return fmt.Errorf("SIF %s is truncated or damaged: its descriptors are %d bytes at byte %d, the file has %d",
			path, h.descSize, h.descOffset, size)
	case !within(h.dataOffset, h.dataSize, size):
		return fmt.Errorf("SIF %s is truncated or damaged: its data area is %d bytes at byte %d, the file has %d",
			path, h.dataSize, h.dataOffset, size)
	}
	return nil
}

// checkSIFObjects checks that every data object in use in fimg lies inside a
// file of size bytes: sif/v2 reads them without looking.
func checkSIFObjects(path string, fimg *sif.FileImage, size int64) error {
	var err error
	fimg.WithDescriptors(func(d sif.Descriptor) bool {
		if !within(d.Offset(), d.Size(), size) {
			err = fmt.Errorf("SIF %s is truncated or damaged: object %d (%s) is %d bytes at byte %d, the file has %d",
				path, d.ID(), d.DataType(), d.Size(), d.Offset(), size)
			return true
		}
		return false
	})
	return err
}

// LoadSIF loads the SIF file r of size bytes with github.com/sylabs/sif/v2
// after checking what that library trusts: the header's descriptor count,
// the offsets and sizes of the descriptor table and the data area, and then
// those of every data object, against the file size. Every command that
// reads a SIF goes through here. A panic left in the library becomes an
// error. r stays open (UnloadContainer does not close it); the errors name
// path.
func LoadSIF(r sif.ReadWriter, path string, size int64) (*sif.FileImage, error) {
	head := make([]byte, sifHeaderSize)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading SIF %s: %w", path, err)
	}
	return loadSIF(r, path, size, head[:n])
}

// loadSIF is LoadSIF with the file's first bytes already read into head.
func loadSIF(r sif.ReadWriter, path string, size int64, head []byte) (fimg *sif.FileImage, err error) {
	if err := checkSIFHeader(path, head, size); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			fimg, err = nil, fmt.Errorf("SIF %s is damaged: reading it failed: %s", path,
				msg.OneLine(fmt.Sprint(p)))
		}
	}()
	fimg, err = sif.LoadContainer(r, sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		return nil, fmt.Errorf("reading SIF %s: %w (the file may be truncated or damaged)", path, err)
	}
	if err := checkSIFObjects(path, fimg, size); err != nil {
		return nil, err
	}
	return fimg, nil
}
