package squashfs

import (
	"encoding/binary"
	"fmt"
)

// Entry sizes of the tables reached through lookup tables of metadata block
// pointers.
const (
	idEntrySize       = 4
	fragmentEntrySize = 16
	xattrIDEntrySize  = 16
	exportEntrySize   = 8
)

// readTables checks where the tables lie and reads the lookup tables.
// mksquashfs writes, after the data, the inode table, the directory table,
// the fragment table, the export table, the id table and the xattr tables,
// each table's metadata blocks before its lookup table; walking them back
// from the end gives each one's end, as the kernel does.
func (im *Image) readTables() error {
	sb := &im.sb
	next := sb.bytesUsed
	if sb.xattrIDTable != invalidBlock {
		if err := im.readXattrIDTable(next); err != nil {
			return fmt.Errorf("reading the xattr id table at %d: %w", sb.xattrIDTable, err)
		}
		next = im.xattrTable
	}

	if sb.noIDs == 0 {
		return corrupt("superblock: no ids")
	}
	idPtrs, err := im.readLookup(sb.idTable, next, uint64(sb.noIDs)*idEntrySize, superblockSize, sb.idTable)
	if err != nil {
		return fmt.Errorf("reading the id lookup table at %d: %w", sb.idTable, err)
	}
	if err := im.readIDs(idPtrs); err != nil {
		return fmt.Errorf("reading the id table: %w", err)
	}
	next = idPtrs[0]

	if sb.lookupTable != invalidBlock {
		// The export table is not used, but it bounds the tables before.
		n := (uint64(sb.inodes)*exportEntrySize + metaSize - 1) / metaSize
		if sb.lookupTable > next || n*8 > next-sb.lookupTable {
			return corrupt("export table at %d overlaps the table at %d", sb.lookupTable, next)
		}
		var p [8]byte
		if err := im.readRaw(p[:], sb.lookupTable); err != nil {
			return fmt.Errorf("reading the export table: %w", err)
		}
		first := binary.LittleEndian.Uint64(p[:])
		if first >= sb.lookupTable || first < superblockSize {
			return corrupt("export table: first block at %d", first)
		}
		next = first
	}

	if sb.fragments > 0 {
		ptrs, err := im.readLookup(sb.fragmentTable, next, uint64(sb.fragments)*fragmentEntrySize, sb.dirTable, sb.fragmentTable)
		if err != nil {
			return fmt.Errorf("reading the fragment lookup table at %d: %w", sb.fragmentTable, err)
		}
		im.fragPtrs = ptrs
		next = ptrs[0]
	}

	if sb.dirTable > next {
		return corrupt("directory table at %d overlaps the table at %d", sb.dirTable, next)
	}
	if sb.inodeTable < superblockSize || sb.inodeTable >= sb.dirTable {
		return corrupt("inode table at %d, directory table at %d", sb.inodeTable, sb.dirTable)
	}
	im.inodeEnd = sb.dirTable
	im.dirEnd = next
	return nil
}

// readLookup reads the lookup table at start for a table of tableBytes
// bytes: one pointer per metadata block, each block in [lo, hi), ascending,
// none longer than a stored metadata block. The lookup table itself must
// end by end.
func (im *Image) readLookup(start, end, tableBytes, lo, hi uint64) ([]uint64, error) {
	n := (tableBytes + metaSize - 1) / metaSize
	if start > end || n*8 > end-start {
		return nil, corrupt("%d pointers at %d overlap the table at %d", n, start, end)
	}
	raw := make([]byte, n*8)
	if err := im.readRaw(raw, start); err != nil {
		return nil, err
	}
	ptrs := make([]uint64, n)
	for i := range ptrs {
		p := binary.LittleEndian.Uint64(raw[i*8:])
		limit := hi
		if i+1 < len(ptrs) {
			limit = binary.LittleEndian.Uint64(raw[(i+1)*8:])
		}
		if p < lo || p >= limit || limit-p > metaMaxStored {
			return nil, corrupt("metadata block %d at %d (next at %d, table from %d)", i, p, limit, lo)
		}
		ptrs[i] = p
	}
	return ptrs, nil
}

// readIDs reads the whole id table, at most 65536 ids.
func (im *Image) readIDs(ptrs []uint64) error {
	n := int(im.sb.noIDs)
	im.ids = make([]uint32, 0, n)
	const perBlock = metaSize / idEntrySize
	for i, p := range ptrs {
		limit := im.sb.idTable
		if i+1 < len(ptrs) {
			limit = ptrs[i+1]
		}
		c := im.cursor(p, 0, limit)
		k := min(n-len(im.ids), perBlock)
		b := make([]byte, k*idEntrySize)
		err := c.readFull(b)
		c.close()
		if err != nil {
			return fmt.Errorf("ids in the block at %d: %w", p, err)
		}
		for j := 0; j < k; j++ {
			im.ids = append(im.ids, binary.LittleEndian.Uint32(b[j*4:]))
		}
	}
	return nil
}

// readXattrIDTable reads the xattr id table's header and lookup table,
// which must end by end.
func (im *Image) readXattrIDTable(end uint64) error {
	start := im.sb.xattrIDTable
	if start > end || end-start < 16 {
		return corrupt("header overlaps the table at %d", end)
	}
	var hdr [16]byte
	if err := im.readRaw(hdr[:], start); err != nil {
		return err
	}
	im.xattrTable = binary.LittleEndian.Uint64(hdr[0:])
	im.xattrIDs = binary.LittleEndian.Uint32(hdr[8:])
	if im.xattrTable < superblockSize || im.xattrTable >= start {
		return corrupt("xattr table at %d", im.xattrTable)
	}
	if im.xattrIDs == 0 {
		return nil
	}
	// The id blocks come right before the header, after the key/value
	// blocks.
	ptrs, err := im.readLookup(start+16, end, uint64(im.xattrIDs)*xattrIDEntrySize, im.xattrTable, start)
	if err != nil {
		return err
	}
	im.xattrPtrs = ptrs
	return nil
}
