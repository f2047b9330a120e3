package image

import (
	"encoding/binary"
	"io"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// The fields of an on-disk SIF descriptor (sifDescriptorSize bytes,
// little-endian) that a launch reads, and those of a partition's
// descriptor-specific data (its Extra field).
const (
	descDataType = 0   // int32
	descUsed     = 4   // bool
	descID       = 5   // uint32
	descOffset   = 17  // int64
	descSize     = 25  // int64
	descExtra    = 201 // [384]byte
	partFSType   = 0   // int32, in Extra
	partType     = 4   // int32, in Extra
	partArch     = 8   // [3]byte, in Extra
)

// maxScanTable bounds the descriptor table scanSIF reads in one piece
// (1024 descriptors); a larger one goes to sif/v2 (loadSIF).
const maxScanTable = 1024 * sifDescriptorSize

// sifArchs maps a SIF partition's architecture code to GOARCH, as
// github.com/sylabs/sif/v2 does (TestScanSIFArchs holds the two together).
var sifArchs = map[[3]byte]string{
	{'0', '1'}: "386", {'0', '2'}: "amd64", {'0', '3'}: "arm", {'0', '4'}: "arm64",
	{'0', '5'}: "ppc64", {'0', '6'}: "ppc64le", {'0', '7'}: "mips", {'0', '8'}: "mipsle",
	{'0', '9'}: "mips64", {'1', '0'}: "mips64le", {'1', '1'}: "s390x", {'1', '2'}: "riscv64",
	{'1', '3'}: "loong64",
}

// scanSIF is openSIF's fast path: it decodes the descriptor table of the
// SIF f itself instead of through sif/v2, whose reflection-driven decoding
// of every byte of every descriptor (48 of them, most unused) cost a launch
// about 0.6 ms of its start. It handles the common shape only: a checked
// header (checkSIFHeader) of the current spec version, a table of at most maxScanTable bytes, every
// object in use inside the file, exactly one primary system partition.
// ok false sends anything else to the library, which then reports what is
// wrong as it always did; nothing is decided differently.
func scanSIF(path string, f io.ReaderAt, fileSize int64, head []byte) (img *Image, ok bool) {
	if checkSIFHeader(path, head, fileSize) != nil || string(head[42:45]) != sif.CurrentVersion.String()+"\x00" {
		return nil, false
	}
	h := parseSIFHeader(head)
	n := h.descTotal * sifDescriptorSize
	if n > maxScanTable {
		return nil, false
	}
	table := make([]byte, n)
	if _, err := f.ReadAt(table, h.descOffset); err != nil {
		return nil, false
	}
	var prim, overlay []byte
	for off := int64(0); off < n; off += sifDescriptorSize {
		d := table[off : off+sifDescriptorSize]
		if d[descUsed] == 0 {
			continue
		}
		o, s := int64(binary.LittleEndian.Uint64(d[descOffset:])), int64(binary.LittleEndian.Uint64(d[descSize:]))
		if !within(o, s, fileSize) {
			return nil, false
		}
		if sif.DataType(binary.LittleEndian.Uint32(d[descDataType:])) != sif.DataPartition {
			continue
		}
		switch sif.PartType(binary.LittleEndian.Uint32(d[descExtra+partType:])) {
		case sif.PartPrimSys:
			if prim != nil {
				return nil, false
			}
			prim = d
		case sif.PartOverlay:
			if overlay == nil {
				overlay = d
			}
		}
	}
	if prim == nil {
		return nil, false
	}
	fs, off, size, arch := partitionOf(prim)
	if fs != sif.FsSquash {
		return nil, false
	}
	img = &Image{Path: path, Format: FormatSIF, Offset: off, Size: size, Arch: arch}
	if overlay != nil {
		ofs, ooff, osize, _ := partitionOf(overlay)
		img.Overlay = &Partition{ID: binary.LittleEndian.Uint32(overlay[descID:]), FS: ofs.String(), Offset: ooff, Size: osize}
	}
	return img, true
}

// partitionOf decodes a partition descriptor d: its filesystem type,
// offset, size and architecture (GOARCH, "" when unknown).
func partitionOf(d []byte) (sif.FSType, int64, int64, string) {
	var code [3]byte
	copy(code[:], d[descExtra+partArch:])
	return sif.FSType(binary.LittleEndian.Uint32(d[descExtra+partFSType:])),
		int64(binary.LittleEndian.Uint64(d[descOffset:])), int64(binary.LittleEndian.Uint64(d[descSize:])),
		sifArchs[code]
}
