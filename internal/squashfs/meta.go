package squashfs

import (
	"encoding/binary"
	"fmt"
)

// loadMeta is the metadata cache's loader: it reads the metadata block at
// b.key.pos (a 2-byte header, bit 15 set when stored uncompressed, and at
// most 8192 stored bytes) and decompresses it into b.data.
func (im *Image) loadMeta(b *block) error {
	pos := b.key.pos
	if pos >= im.sb.bytesUsed {
		return corrupt("metadata block at %d lies outside the image", pos)
	}
	sp := im.scratch.Get().(*[]byte)
	defer im.scratch.Put(sp)
	raw := (*sp)[:min(uint64(metaMaxStored), im.sb.bytesUsed-pos)]
	if len(raw) < 2 {
		return corrupt("metadata block at %d: truncated header", pos)
	}
	if err := im.readRaw(raw, pos); err != nil {
		return fmt.Errorf("reading the metadata block at %d: %w", pos, err)
	}
	h := binary.LittleEndian.Uint16(raw)
	n := int(h &^ metaUncompressed)
	if n == 0 || n > metaSize || n > len(raw)-2 {
		return corrupt("metadata block at %d: stored length %d", pos, n)
	}
	src := raw[2 : 2+n]
	b.next = pos + 2 + uint64(n)
	if h&metaUncompressed != 0 {
		b.data = b.data[:copy(b.data, src)]
		return nil
	}
	m, err := im.dec.decompress(b.data[:metaSize], src)
	if err != nil {
		return corrupt("metadata block at %d: %v", pos, err)
	}
	if m == 0 {
		return corrupt("metadata block at %d is empty", pos)
	}
	b.data = b.data[:m]
	return nil
}

// cursor reads a stream of metadata blocks, starting at offset off of the
// block at pos; no block may start at or end past limit. It holds the
// current block until it moves past it or is closed.
type cursor struct {
	im    *Image
	pos   uint64 // current block
	off   int    // offset in it
	limit uint64
	blk   *block
	buf   [2 * maxNameLen]byte // for reads that span blocks
}

// cursor returns a cursor at offset off of the metadata block at pos.
func (im *Image) cursor(pos uint64, off int, limit uint64) cursor {
	return cursor{im: im, pos: pos, off: off, limit: limit}
}

// close releases the block the cursor holds.
func (c *cursor) close() {
	if c.blk != nil {
		c.im.meta.release(c.blk)
		c.blk = nil
	}
}

// where returns the block and offset the next read starts at.
func (c *cursor) where() (uint64, int) { return c.pos, c.off }

// fill makes c.blk the block holding the next byte.
func (c *cursor) fill() error {
	for {
		if c.blk == nil {
			if c.pos >= c.limit {
				return corrupt("metadata at %d runs past its table's end %d", c.pos, c.limit)
			}
			b, err := c.im.meta.get(blockKey{pos: c.pos})
			if err != nil {
				return err
			}
			if b.next > c.limit {
				c.im.meta.release(b)
				return corrupt("metadata block at %d runs past its table's end %d", c.pos, c.limit)
			}
			c.blk = b
		}
		if c.off < len(c.blk.data) {
			return nil
		}
		if c.off > len(c.blk.data) {
			return corrupt("offset %d past the end of the %d-byte metadata block at %d", c.off, len(c.blk.data), c.pos)
		}
		// The block is used up: go on to the next, which starts further
		// on, so this ends at the limit.
		c.pos, c.off = c.blk.next, 0
		c.im.meta.release(c.blk)
		c.blk = nil
	}
}

// take returns the next n bytes when the current block holds them: the
// fast path of read, small enough to be inlined.
func (c *cursor) take(n int) ([]byte, bool) {
	if c.blk != nil && c.off+n <= len(c.blk.data) {
		s := c.blk.data[c.off : c.off+n]
		c.off += n
		return s, true
	}
	return nil, false
}

// read returns the next n bytes, n <= len(c.buf), valid until the next
// call on c.
func (c *cursor) read(n int) ([]byte, error) {
	if err := c.fill(); err != nil {
		return nil, err
	}
	if d := c.blk.data; c.off+n <= len(d) {
		s := d[c.off : c.off+n]
		c.off += n
		return s, nil
	}
	if n > len(c.buf) {
		return nil, fmt.Errorf("metadata read of %d bytes is too long", n)
	}
	if err := c.readFull(c.buf[:n]); err != nil {
		return nil, err
	}
	return c.buf[:n], nil
}

// readFull reads the next len(p) bytes into p.
func (c *cursor) readFull(p []byte) error {
	for len(p) > 0 {
		if err := c.fill(); err != nil {
			return err
		}
		k := copy(p, c.blk.data[c.off:])
		c.off += k
		p = p[k:]
	}
	return nil
}

// skip moves past the next n bytes.
func (c *cursor) skip(n uint64) error {
	for n > 0 {
		if err := c.fill(); err != nil {
			return err
		}
		k := min(n, uint64(len(c.blk.data)-c.off))
		c.off += int(k)
		n -= k
	}
	return nil
}
