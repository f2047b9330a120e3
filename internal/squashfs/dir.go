package squashfs

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
)

// dirDataOffset is what a directory's stored size counts beyond its
// listing: the "." and ".." entries the listing does not hold.
const dirDataOffset = 3

// Sizes of the parts of a directory listing and index.
const (
	dirHeaderSize = 12
	dirEntrySize  = 8
	dirIndexSize  = 12
)

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	// Name is the entry's name.
	Name string
	// Ref is where the entry's inode is stored.
	Ref Ref
	// Number is the entry's inode number.
	Number uint32
	// Type is the entry's inode type.
	Type Type
}

// dirReader walks a directory listing: headers (a count, the metadata
// block of the inodes that follow and an inode number base), each followed
// by up to 256 entries.
type dirReader struct {
	c       cursor
	left    uint64 // listing bytes not read yet
	count   int    // entries left under the current header
	inoBlk  uint32 // the current header's inode block
	inoBase uint32 // the current header's inode number base
}

// openDir sets r at the start of d's listing.
func (im *Image) openDir(r *dirReader, d *Inode) error {
	if d.Type != Dir {
		return fmt.Errorf("inode %d is a %s, not a directory", d.Number, d.Type)
	}
	*r = dirReader{c: im.cursor(im.sb.dirTable+d.start, int(d.dirOff), im.dirEnd)}
	if d.Size > dirDataOffset {
		r.left = d.Size - dirDataOffset
	}
	return nil
}

// seek moves r to byte off of the listing, where a header starts, stored
// in the metadata block at blk (relative to the directory table): a jump
// the directory index gives.
func (r *dirReader) seek(d *Inode, blk, off uint32) error {
	if uint64(off) > r.left {
		return corrupt("directory index points to %d past the %d-byte listing", off, r.left)
	}
	im := r.c.im
	if uint64(blk) >= im.dirEnd-im.sb.dirTable {
		return corrupt("directory index block %d outside the directory table", blk)
	}
	r.c.close()
	r.c.pos = im.sb.dirTable + uint64(blk)
	r.c.off = int((uint64(d.dirOff) + uint64(off)) % metaSize)
	r.left -= uint64(off)
	r.count = 0
	return nil
}

// next returns the next entry's name (valid until the next call) and the
// rest of the entry; ok is false at the end of the listing.
func (r *dirReader) next() (name []byte, e DirEntry, ok bool, err error) {
	le := binary.LittleEndian
	for r.count == 0 {
		if r.left == 0 {
			return nil, e, false, nil
		}
		if r.left < dirHeaderSize {
			return nil, e, false, corrupt("directory listing ends inside a header")
		}
		h, err := r.c.read(dirHeaderSize)
		if err != nil {
			return nil, e, false, err
		}
		r.left -= dirHeaderSize
		n := uint64(le.Uint32(h[0:])) + 1
		if n > maxDirCount || n*(dirEntrySize+1) > r.left {
			return nil, e, false, corrupt("directory header of %d entries with %d bytes of listing left", n, r.left)
		}
		r.count, r.inoBlk, r.inoBase = int(n), le.Uint32(h[4:]), le.Uint32(h[8:])
	}
	b, ok := r.c.take(dirEntrySize)
	if !ok {
		if b, err = r.c.read(dirEntrySize); err != nil {
			return nil, e, false, err
		}
	}
	off, delta := le.Uint16(b[0:]), int16(le.Uint16(b[2:]))
	t, size := le.Uint16(b[4:]), int(le.Uint16(b[6:]))+1
	if size > maxNameLen {
		return nil, e, false, corrupt("directory entry name of %d bytes", size)
	}
	if t == 0 || t > uint16(Socket) {
		return nil, e, false, corrupt("directory entry type %d", t)
	}
	if off >= metaSize {
		return nil, e, false, corrupt("directory entry inode offset %d", off)
	}
	if name, ok = r.c.take(size); !ok {
		if name, err = r.c.read(size); err != nil {
			return nil, e, false, err
		}
	}
	if uint64(dirEntrySize+size) > r.left {
		return nil, e, false, corrupt("directory entry runs past the listing")
	}
	r.left -= uint64(dirEntrySize + size)
	r.count--
	e = DirEntry{
		Ref:    Ref(r.inoBlk)<<16 | Ref(off),
		Number: r.inoBase + uint32(int32(delta)),
		Type:   Type(t),
	}
	return name, e, true, nil
}

// validName reports whether a name can name a directory entry: not empty,
// not "." or "..", without '/' or NUL.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && strings.IndexByte(s, '/') < 0 && strings.IndexByte(s, 0) < 0
}

// ReadDir returns the entries of dir in the order they are stored (sorted
// by name), without "." and "..".
func (im *Image) ReadDir(dir *Inode) ([]DirEntry, error) {
	var r dirReader
	if err := im.openDir(&r, dir); err != nil {
		return nil, fmt.Errorf("listing a directory: %w", err)
	}
	defer r.c.close()
	var out []DirEntry
	for {
		name, e, ok, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("listing directory %d: %w", dir.Number, err)
		}
		if !ok {
			return out, nil
		}
		e.Name = string(name)
		if !validName(e.Name) {
			return nil, corrupt("listing directory %d: entry name %q", dir.Number, e.Name)
		}
		out = append(out, e)
	}
}

// Lookup returns the inode of the entry name of dir. It jumps ahead
// through the directory index when there is one and stops at the first
// name sorting after name.
func (im *Image) Lookup(dir *Inode, name string) (*Inode, error) {
	var r dirReader
	if err := im.openDir(&r, dir); err != nil {
		return nil, fmt.Errorf("looking up %q: %w", name, err)
	}
	defer r.c.close()
	if len(name) > maxNameLen || !validName(name) {
		return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, fs.ErrNotExist)
	}
	if dir.idxLen > 0 {
		if err := im.useIndex(&r, dir, name); err != nil {
			return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, err)
		}
	}
	for {
		entry, e, ok, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, err)
		}
		if !ok {
			return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, fs.ErrNotExist)
		}
		// Names are stored sorted (as strcmp sorts): past name, it is not
		// there. Names that are not valid cannot equal name, which is.
		if string(entry) != name {
			if string(entry) > name {
				return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, fs.ErrNotExist)
			}
			continue
		}
		ino, err := im.Inode(e.Ref)
		if err != nil {
			return nil, fmt.Errorf("looking up %q in directory %d: %w", name, dir.Number, err)
		}
		if ino.Type != e.Type {
			return nil, corrupt("looking up %q in directory %d: entry of type %s names a %s", name, dir.Number, e.Type, ino.Type)
		}
		return ino, nil
	}
}

// DirResume is where a listing stopped (ListFrom records it): given back
// with the same directory and position, the listing goes on from there
// without decoding again what came before it, with or without a directory
// index. Its zero value holds nothing.
type DirResume struct {
	ok              bool
	dir             Ref    // the directory's inode
	end             uint64 // the listing position it stopped at
	blk             uint64 // the metadata block of the next byte
	off             int    // and its offset in it
	left            uint64 // listing bytes not read yet
	count           int    // entries left under the current header
	inoBlk, inoBase uint32 // the current header's
}

// ListFrom calls fn with the entries of dir, in the order they are stored,
// from listing position pos on, until fn returns false or the listing
// ends. Positions are byte offsets into the listing: 0 is its start, and
// end, given with each entry, is where the next entry starts, to pass as
// pos to go on after it. A pos inside an entry goes on with that entry.
//
// res, when not nil, is where the last call stopped, and ListFrom records
// in it where this one stops (before the entry fn refused): a call that
// goes on where the last one ended starts there. Any other call decodes at
// most one index stretch (about a metadata block of listing) before pos;
// in a directory without an index, the listing up to pos. A listing read a
// page at a time is never read whole, nor kept.
func (im *Image) ListFrom(dir *Inode, pos uint64, res *DirResume, fn func(e DirEntry, end uint64) bool) error {
	var r dirReader
	if err := im.openDir(&r, dir); err != nil {
		return fmt.Errorf("listing a directory: %w", err)
	}
	defer r.c.close()
	size := r.left
	if pos >= size {
		return nil
	}
	switch {
	case res != nil && res.ok && res.dir == dir.Ref && res.end == pos && res.left == size-pos:
		r.c = im.cursor(res.blk, res.off, im.dirEnd)
		r.left, r.count, r.inoBlk, r.inoBase = res.left, res.count, res.inoBlk, res.inoBase
	case dir.idxLen > 0 && pos > 0:
		if err := im.indexAt(&r, dir, pos); err != nil {
			return fmt.Errorf("listing directory %d: %w", dir.Number, err)
		}
	}
	for {
		before := r.resume(dir.Ref, size)
		name, e, ok, err := r.next()
		if err != nil {
			return fmt.Errorf("listing directory %d: %w", dir.Number, err)
		}
		if !ok {
			return nil
		}
		end := size - r.left
		if end <= pos {
			continue
		}
		if e.Name = string(name); !validName(e.Name) {
			return corrupt("listing directory %d: entry name %q", dir.Number, e.Name)
		}
		if !fn(e, end) {
			if res != nil {
				*res = before
			}
			return nil
		}
	}
}

// resume is where r stands, as a DirResume of the directory at ref whose
// listing is size bytes.
func (r *dirReader) resume(ref Ref, size uint64) DirResume {
	blk, off := r.c.where()
	return DirResume{ok: true, dir: ref, end: size - r.left, blk: blk, off: off,
		left: r.left, count: r.count, inoBlk: r.inoBlk, inoBase: r.inoBase}
}

// indexAt moves r to the last header the index of dir says starts at or
// before listing position pos. Index offsets only grow (one that does not
// ends the index), so the walk stops at the first one past pos.
func (im *Image) indexAt(r *dirReader, dir *Inode, pos uint64) error {
	x := im.openIndex(dir)
	defer x.c.close()
	var found bool
	var off, blk uint32
	for {
		o, k, _, ok, err := x.next()
		if err != nil {
			return err
		}
		if !ok || uint64(o) > pos || (found && o < off) {
			break
		}
		found, off, blk = true, o, k
	}
	if !found {
		return nil
	}
	return r.seek(dir, blk, off)
}

// useIndex moves r to the last header the index of dir says starts with a
// name sorting before or at name.
func (im *Image) useIndex(r *dirReader, dir *Inode, name string) error {
	x := im.openIndex(dir)
	defer x.c.close()
	var found bool
	var off, blk uint32
	for {
		o, k, n, ok, err := x.next()
		if err != nil {
			return err
		}
		if !ok || string(n) > name {
			break
		}
		found, off, blk = true, o, k
	}
	if !found {
		return nil
	}
	return r.seek(dir, blk, off)
}

// indexReader walks a directory's index: each entry holds the listing
// offset of a header, the header's metadata block and its first name.
type indexReader struct {
	c    cursor
	left int // entries not read yet
}

// openIndex starts reading the index of dir.
func (im *Image) openIndex(dir *Inode) indexReader {
	return indexReader{c: im.cursor(dir.tailPos, int(dir.tailOff), im.inodeEnd), left: int(dir.idxLen)}
}

// next returns the next index entry (name valid until the next call); ok
// is false past the last.
func (x *indexReader) next() (off, blk uint32, name []byte, ok bool, err error) {
	if x.left == 0 {
		return 0, 0, nil, false, nil
	}
	x.left--
	le := binary.LittleEndian
	b, err := x.c.read(dirIndexSize)
	if err != nil {
		return 0, 0, nil, false, fmt.Errorf("reading the directory index: %w", err)
	}
	off, blk, size := le.Uint32(b[0:]), le.Uint32(b[4:]), uint64(le.Uint32(b[8:]))+1
	if size > maxNameLen {
		return 0, 0, nil, false, corrupt("directory index name of %d bytes", size)
	}
	if name, err = x.c.read(int(size)); err != nil {
		return 0, 0, nil, false, fmt.Errorf("reading the directory index: %w", err)
	}
	return off, blk, name, true, nil
}
