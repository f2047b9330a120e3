package squashfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// indexStride is how many blocks lie between two checkpoints of a block
// index; files with fewer blocks walk their block list from its start.
const indexStride = 256

// batchBlocks is how many blocks of one read are looked up at once; those
// after the first are decompressed in parallel when the cache can hold
// them.
const batchBlocks = 8

// blockCount returns how many data blocks f's block list has: all of the
// file, or all but the tail kept in a fragment.
func (im *Image) blockCount(f *Inode) uint64 {
	if f.frag == invalidFrag {
		return (f.Size + uint64(im.sb.blockSize) - 1) >> im.sb.blockLog
	}
	return f.Size >> im.sb.blockLog
}

// checkpoint locates block i*indexStride of a file: where its data starts
// and where its size word is in the inode table.
type checkpoint struct {
	data uint64
	mpos uint64
	moff uint16
}

// blockIndex holds the checkpoints of one file's block list found so far.
type blockIndex struct {
	mu  sync.Mutex
	cps []checkpoint // cps[i] is block i*indexStride
}

// indexCache keeps the block indexes of the files with many blocks, so
// that decoding an inode again finds its index.
type indexCache struct {
	mu sync.Mutex
	m  map[Ref]*blockIndex
}

// maxIndexes bounds the indexCache; past it an arbitrary index is dropped.
const maxIndexes = 1024

func (c *indexCache) init() { c.m = make(map[Ref]*blockIndex) }

// get returns f's block index, new or kept.
func (c *indexCache) get(f *Inode) *blockIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if bi := c.m[f.Ref]; bi != nil {
		return bi
	}
	if len(c.m) >= maxIndexes {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	bi := &blockIndex{cps: []checkpoint{{data: f.start, mpos: f.tailPos, moff: f.tailOff}}}
	c.m[f.Ref] = bi
	return bi
}

// blockWalker steps through a file's block list.
type blockWalker struct {
	im  *Image
	c   cursor // at the size word of block k
	k   uint64 // the next block
	pos uint64 // where block k's data starts
	n   uint64 // blocks in the list
}

// walkFrom sets w at block k of f.
func (im *Image) walkFrom(w *blockWalker, f *Inode, k uint64) error {
	cp, base := checkpoint{data: f.start, mpos: f.tailPos, moff: f.tailOff}, uint64(0)
	if f.bi != nil {
		var err error
		if cp, base, err = im.checkpointAt(f, k); err != nil {
			return err
		}
	}
	w.im, w.k, w.pos, w.n = im, base, cp.data, im.blockCount(f)
	w.c = im.cursor(cp.mpos, int(cp.moff), im.inodeEnd)
	return w.skip(k - base)
}

// checkpointAt returns the last checkpoint at or before block k of f,
// finding the missing ones.
func (im *Image) checkpointAt(f *Inode, k uint64) (checkpoint, uint64, error) {
	bi := f.bi
	ci := k / indexStride
	bi.mu.Lock()
	defer bi.mu.Unlock()
	for uint64(len(bi.cps)) <= ci {
		last := bi.cps[len(bi.cps)-1]
		w := blockWalker{im: im, k: uint64(len(bi.cps)-1) * indexStride, pos: last.data, n: im.blockCount(f)}
		w.c = im.cursor(last.mpos, int(last.moff), im.inodeEnd)
		err := w.skip(indexStride)
		pos, off := w.c.where()
		w.c.close()
		if err != nil {
			return checkpoint{}, 0, err
		}
		bi.cps = append(bi.cps, checkpoint{data: w.pos, mpos: pos, moff: uint16(off)})
	}
	return bi.cps[ci], ci * indexStride, nil
}

// skip moves w past m blocks, reading their size words in runs.
func (w *blockWalker) skip(m uint64) error {
	for m > 0 {
		k := min(m, uint64(len(w.c.buf)/4))
		b, err := w.c.read(int(k) * 4)
		if err != nil {
			return fmt.Errorf("reading the block list: %w", err)
		}
		for i := 0; i < int(k); i++ {
			if _, err := w.step(binary.LittleEndian.Uint32(b[i*4:])); err != nil {
				return err
			}
		}
		m -= k
	}
	return nil
}

// next returns the position and size word of the next block.
func (w *blockWalker) next() (uint64, uint32, error) {
	b, err := w.c.read(4)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the block list: %w", err)
	}
	word := binary.LittleEndian.Uint32(b)
	pos, err := w.step(word)
	return pos, word, err
}

// step checks the size word of block w.k and moves past it, returning
// where the block starts.
func (w *blockWalker) step(word uint32) (uint64, error) {
	if w.k >= w.n {
		return 0, fmt.Errorf("block %d past the %d of the file", w.k, w.n)
	}
	if err := w.im.checkBlock(w.pos, word); err != nil {
		return 0, fmt.Errorf("block %d: %w", w.k, err)
	}
	pos := w.pos
	w.pos += uint64(word & blockSizeMask)
	w.k++
	return pos, nil
}

// checkBlock checks a data or fragment block's size word and that it lies
// inside the image.
func (im *Image) checkBlock(pos uint64, word uint32) error {
	size := uint64(word & blockSizeMask)
	if word>>25 != 0 || size > uint64(im.sb.blockSize) {
		return corrupt("data block size word %#x", word)
	}
	if size > 0 && (pos > im.sb.bytesUsed || size > im.sb.bytesUsed-pos) {
		return corrupt("data block of %d bytes at %d lies outside the image", size, pos)
	}
	return nil
}

// loadData is the data cache's loader: it reads the data or fragment
// block b.key names and decompresses it into b.data.
func (im *Image) loadData(b *block) error {
	pos, word := b.key.pos, b.key.word
	size := int(word & blockSizeMask)
	if word&blockUncompressed != 0 {
		b.data = b.data[:size]
		if err := im.readRaw(b.data, pos); err != nil {
			return fmt.Errorf("reading the data block at %d: %w", pos, err)
		}
		return nil
	}
	sp := im.scratch.Get().(*[]byte)
	defer im.scratch.Put(sp)
	src := (*sp)[:size]
	if err := im.readRaw(src, pos); err != nil {
		return fmt.Errorf("reading the data block at %d: %w", pos, err)
	}
	n, err := im.dec.decompress(b.data[:im.sb.blockSize], src)
	if err != nil {
		return corrupt("data block at %d: %v", pos, err)
	}
	b.data = b.data[:n]
	return nil
}

// fragment returns the key of fragment block idx.
func (im *Image) fragment(idx uint32) (blockKey, error) {
	at := uint64(idx) * fragmentEntrySize
	i := at / metaSize
	if idx >= im.sb.fragments || i >= uint64(len(im.fragPtrs)) {
		return blockKey{}, corrupt("fragment %d not in the %d fragments", idx, im.sb.fragments)
	}
	limit := im.sb.fragmentTable
	if i+1 < uint64(len(im.fragPtrs)) {
		limit = im.fragPtrs[i+1]
	}
	c := im.cursor(im.fragPtrs[i], int(at%metaSize), limit)
	defer c.close()
	b, err := c.read(fragmentEntrySize)
	if err != nil {
		return blockKey{}, fmt.Errorf("reading fragment entry %d: %w", idx, err)
	}
	k := blockKey{pos: binary.LittleEndian.Uint64(b[0:]), word: binary.LittleEndian.Uint32(b[8:])}
	if k.word&blockSizeMask == 0 {
		return blockKey{}, corrupt("fragment %d is empty", idx)
	}
	if err := im.checkBlock(k.pos, k.word); err != nil {
		return blockKey{}, fmt.Errorf("fragment %d: %w", idx, err)
	}
	return k, nil
}

// ReadAt reads len(p) bytes of the regular file f at off, as io.ReaderAt
// does: a read that reaches the end of the file returns io.EOF with the
// bytes it read.
func (im *Image) ReadAt(f *Inode, p []byte, off int64) (int, error) {
	if f.Type != File {
		return 0, fmt.Errorf("reading inode %d: a %s, not a regular file", f.Number, f.Type)
	}
	if off < 0 {
		return 0, fmt.Errorf("reading inode %d: negative offset %d", f.Number, off)
	}
	if uint64(off) >= f.Size {
		return 0, io.EOF
	}
	n := int(min(uint64(len(p)), f.Size-uint64(off)))
	done, err := im.readRange(f, p[:n], uint64(off))
	if err != nil {
		return done, fmt.Errorf("reading inode %d at %d: %w", f.Number, off+int64(done), err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readRange fills p from off of f; all of p lies inside the file.
func (im *Image) readRange(f *Inode, p []byte, off uint64) (int, error) {
	bs := uint64(im.sb.blockSize)
	nb := im.blockCount(f)
	k := off >> im.sb.blockLog
	done := 0
	if k < nb {
		var w blockWalker
		if err := im.walkFrom(&w, f, k); err != nil {
			return 0, err
		}
		defer w.c.close()
		var batch [batchBlocks]blockKey
		for done < len(p) && w.k < nb {
			// Look up the blocks of this read ahead of copying them, and
			// start decompressing all but the first in the background.
			first := w.k
			end := (off + uint64(len(p)) - 1) >> im.sb.blockLog
			m := int(min(uint64(batchBlocks), nb-first, end-first+1))
			for i := 0; i < m; i++ {
				pos, word, err := w.next()
				if err != nil {
					return done, err
				}
				batch[i] = blockKey{pos: pos, word: word}
			}
			if m > 1 && im.data.max >= 2*batchBlocks {
				for _, key := range batch[1:m] {
					if key.word&blockSizeMask != 0 {
						im.data.prefetch(key, im.sem)
					}
				}
			}
			for i, key := range batch[:m] {
				bk := first + uint64(i)
				in := off + uint64(done) - bk*bs
				size := min(bs, f.Size-bk*bs)
				c, err := im.copyBlock(p[done:], key, in, size)
				if err != nil {
					return done, fmt.Errorf("block %d: %w", bk, err)
				}
				done += c
			}
		}
		if im.readAhead > 0 {
			for i := 0; i < im.readAhead && w.k < nb; i++ {
				pos, word, err := w.next()
				if err != nil {
					break // the read itself went well
				}
				if word&blockSizeMask != 0 {
					im.data.prefetch(blockKey{pos: pos, word: word}, im.sem)
				}
			}
		}
	}
	if done < len(p) {
		c, err := im.copyTail(f, p[done:], off+uint64(done)-nb*bs)
		done += c
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// copyBlock copies what p can take of the block key, of size bytes in the
// file, from byte in of it.
func (im *Image) copyBlock(p []byte, key blockKey, in, size uint64) (int, error) {
	n := int(min(uint64(len(p)), size-in))
	if key.word&blockSizeMask == 0 {
		clear(p[:n])
		return n, nil
	}
	b, err := im.data.get(key)
	if err != nil {
		return 0, err
	}
	defer im.data.release(b)
	if uint64(len(b.data)) < size {
		return 0, corrupt("data block at %d holds %d bytes, want %d", key.pos, len(b.data), size)
	}
	return copy(p[:n], b.data[in:]), nil
}

// copyTail copies the tail of f kept in its fragment from byte in of the
// tail.
func (im *Image) copyTail(f *Inode, p []byte, in uint64) (int, error) {
	if f.frag == invalidFrag {
		return 0, corrupt("file of %d bytes without a tail fragment", f.Size)
	}
	tail := f.Size & (uint64(im.sb.blockSize) - 1)
	key, err := im.fragment(f.frag)
	if err != nil {
		return 0, err
	}
	b, err := im.data.get(key)
	if err != nil {
		return 0, fmt.Errorf("fragment %d: %w", f.frag, err)
	}
	defer im.data.release(b)
	start := uint64(f.fragOff)
	if start+tail > uint64(len(b.data)) {
		return 0, corrupt("tail of %d bytes at %d of the %d-byte fragment block %d", tail, start, len(b.data), f.frag)
	}
	return copy(p, b.data[start+in:start+tail]), nil
}
