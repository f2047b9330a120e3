package squashfs

import (
	"encoding/binary"
	"fmt"
)

// Xattr is one extended attribute.
type Xattr struct {
	// Name is the full name, prefix included ("user.foo").
	Name string
	// Value is the value.
	Value []byte
}

// Limits on extended attributes: Linux's on one name and one value, and
// this package's on all of one inode's together, which bounds what one
// request costs (every request decodes all of an inode's pairs): twice
// Linux's limit on a list of names (64 KiB). A crafted image at the old
// bound (4 MiB, 524288 pairs) made one getxattr take 1.2 s and 30 MB.
const (
	maxXattrName  = 255
	maxXattrValue = 65536
	maxXattrTotal = 128 << 10
	xattrOOL      = 0x100 // the value is stored elsewhere; this one is its reference
)

// xattrPrefixes are the name prefixes by their stored number.
var xattrPrefixes = [...]string{"user.", "trusted.", "security."}

// Xattrs returns the extended attributes of i, nil when it has none.
func (im *Image) Xattrs(i *Inode) ([]Xattr, error) {
	if i.xattr == invalidXattr {
		return nil, nil
	}
	xs, err := im.readXattrs(i.xattr)
	if err != nil {
		return nil, fmt.Errorf("reading the xattrs of inode %d: %w", i.Number, err)
	}
	return xs, nil
}

// readXattrs reads the key/value pairs that xattr id idx names.
func (im *Image) readXattrs(idx uint32) ([]Xattr, error) {
	at := uint64(idx) * xattrIDEntrySize
	bi := at / metaSize
	if idx >= im.xattrIDs || bi >= uint64(len(im.xattrPtrs)) {
		return nil, corrupt("xattr id %d not in the %d ids", idx, im.xattrIDs)
	}
	limit := im.sb.xattrIDTable
	if bi+1 < uint64(len(im.xattrPtrs)) {
		limit = im.xattrPtrs[bi+1]
	}
	c := im.cursor(im.xattrPtrs[bi], int(at%metaSize), limit)
	b, err := c.read(xattrIDEntrySize)
	c.close()
	if err != nil {
		return nil, fmt.Errorf("reading xattr id %d: %w", idx, err)
	}
	le := binary.LittleEndian
	ref, count := le.Uint64(b[0:]), le.Uint32(b[8:])
	// Each pair takes at least 8 bytes, and none can be empty.
	if count == 0 || count > maxXattrTotal/8 {
		return nil, corrupt("xattr id %d: %d pairs", idx, count)
	}
	kv, err := im.xattrCursor(ref)
	if err != nil {
		return nil, err
	}
	defer kv.close()
	out := make([]Xattr, 0, min(count, 16))
	total := 0
	for n := uint32(0); n < count; n++ {
		x, err := im.readXattr(&kv)
		if err != nil {
			return nil, fmt.Errorf("xattr %d of id %d: %w", n, idx, err)
		}
		if total += len(x.Name) + len(x.Value); total > maxXattrTotal {
			return nil, corrupt("xattr id %d: more than %d bytes", idx, maxXattrTotal)
		}
		out = append(out, x)
	}
	return out, nil
}

// xattrCursor returns a cursor at ref in the xattr key/value table.
func (im *Image) xattrCursor(ref uint64) (cursor, error) {
	end := im.sb.xattrIDTable
	if len(im.xattrPtrs) > 0 {
		end = im.xattrPtrs[0]
	}
	blk, off := ref>>16, int(ref&0xffff)
	if off >= metaSize || blk >= end-im.xattrTable {
		return cursor{}, corrupt("xattr reference %#x outside the xattr table", ref)
	}
	return im.cursor(im.xattrTable+blk, off, end), nil
}

// readXattr reads one pair: type (prefix and out-of-line flag), name size,
// name, value size, value or, out of line, the value's reference.
func (im *Image) readXattr(c *cursor) (Xattr, error) {
	le := binary.LittleEndian
	b, err := c.read(4)
	if err != nil {
		return Xattr{}, err
	}
	t, size := le.Uint16(b[0:]), int(le.Uint16(b[2:]))
	prefix := int(t &^ xattrOOL)
	if prefix >= len(xattrPrefixes) {
		return Xattr{}, corrupt("xattr type %#x", t)
	}
	if size == 0 || size > maxXattrName {
		return Xattr{}, corrupt("xattr name of %d bytes", size)
	}
	name, err := c.read(size)
	if err != nil {
		return Xattr{}, err
	}
	x := Xattr{Name: xattrPrefixes[prefix] + string(name)}
	if b, err = c.read(4); err != nil {
		return Xattr{}, err
	}
	vsize := le.Uint32(b)
	if t&xattrOOL == 0 {
		x.Value, err = readValue(c, vsize)
		return x, err
	}
	if vsize != 8 {
		return Xattr{}, corrupt("out-of-line xattr reference of %d bytes", vsize)
	}
	if b, err = c.read(8); err != nil {
		return Xattr{}, err
	}
	vc, err := im.xattrCursor(le.Uint64(b))
	if err != nil {
		return Xattr{}, err
	}
	defer vc.close()
	if b, err = vc.read(4); err != nil {
		return Xattr{}, err
	}
	x.Value, err = readValue(&vc, le.Uint32(b))
	return x, err
}

// readValue reads a value of n bytes.
func readValue(c *cursor, n uint32) ([]byte, error) {
	if n > maxXattrValue {
		return nil, corrupt("xattr value of %d bytes", n)
	}
	v := make([]byte, n)
	if err := c.readFull(v); err != nil {
		return nil, err
	}
	return v, nil
}
