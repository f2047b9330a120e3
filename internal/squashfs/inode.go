package squashfs

import (
	"encoding/binary"
	"fmt"
)

// Ref is an inode reference: the start of the inode's metadata block,
// relative to the inode table, << 16 | the inode's offset in that block.
type Ref uint64

// Type is the type of an inode.
type Type uint8

// The inode types, numbered as SquashFS numbers its basic inode types.
const (
	Dir Type = 1 + iota
	File
	Symlink
	BlockDev
	CharDev
	Fifo
	Socket
)

// String returns the name of t.
func (t Type) String() string {
	switch t {
	case Dir:
		return "dir"
	case File:
		return "file"
	case Symlink:
		return "symlink"
	case BlockDev:
		return "block device"
	case CharDev:
		return "char device"
	case Fifo:
		return "fifo"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// modeBits are the S_IFxxx bits of each Type.
var modeBits = [...]uint32{
	Dir:      0o040000,
	File:     0o100000,
	Symlink:  0o120000,
	BlockDev: 0o060000,
	CharDev:  0o020000,
	Fifo:     0o010000,
	Socket:   0o140000,
}

// Inode is a decoded inode.
type Inode struct {
	// Ref is where the inode is stored.
	Ref Ref
	// Number is the inode number in the image, 1 to InodeCount.
	Number uint32
	// Type is the inode's type.
	Type Type
	// Perm holds the permission bits, setuid, setgid and sticky included.
	Perm uint16
	// UID and GID are the owner, resolved through the id table.
	UID, GID uint32
	// Mtime is the modification time in seconds since the epoch.
	Mtime uint32
	// Nlink is the number of hard links.
	Nlink uint32
	// Size is a file's size, a directory's stored size (as the kernel
	// reports it) or a symbolic link's target length.
	Size uint64
	// Rdev is a device's number as stored.
	Rdev uint32

	start   uint64 // file: first data block; dir: block, relative to the directory table
	frag    uint32 // file: fragment index or invalidFrag
	fragOff uint32 // file: offset of the tail in the fragment block
	dirOff  uint16 // dir: offset of the listing in its first block
	idxLen  uint16 // extended dir: entries in the directory index
	xattr   uint32 // xattr index or invalidXattr
	// tailPos and tailOff locate what follows the inode's fixed fields:
	// a file's block list, a directory's index, a link's target.
	tailPos uint64
	tailOff uint16
	bi      *blockIndex // file with many blocks: checkpoints into the block list
}

// Mode returns the inode's type and permission bits as stat's st_mode.
func (i *Inode) Mode() uint32 {
	return i.Type.Mode() | uint32(i.Perm)
}

// Mode returns the S_IFxxx bits of the type (0 for an unknown one).
func (t Type) Mode() uint32 {
	if int(t) < len(modeBits) {
		return modeBits[t]
	}
	return 0
}

// Inode reads the inode at ref.
func (im *Image) Inode(ref Ref) (*Inode, error) {
	ino := new(Inode)
	if err := im.readInode(ref, ino); err != nil {
		return nil, fmt.Errorf("reading the inode at %#x: %w", uint64(ref), err)
	}
	return ino, nil
}

// The SquashFS inode types; the extended ones are the basic ones + 7.
const (
	extOffset = 7
	maxType   = 14
)

// Sizes of the inodes' parts.
const (
	baseSize    = 16
	dirSize     = 16
	extDirSize  = 24
	fileSize    = 16
	extFileSize = 40
)

// readInode decodes the inode at ref into ino.
func (im *Image) readInode(ref Ref, ino *Inode) error {
	blk, off := uint64(ref>>16), int(ref&0xffff)
	if off >= metaSize || blk >= im.inodeEnd-im.sb.inodeTable {
		return corrupt("inode reference outside the inode table")
	}
	c := im.cursor(im.sb.inodeTable+blk, off, im.inodeEnd)
	defer c.close()
	b, err := c.read(baseSize)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	t := le.Uint16(b[0:])
	*ino = Inode{
		Ref:    ref,
		Perm:   le.Uint16(b[2:]) & 0o7777,
		Mtime:  le.Uint32(b[8:]),
		Number: le.Uint32(b[12:]),
		xattr:  invalidXattr,
		frag:   invalidFrag,
	}
	uidIdx, gidIdx := le.Uint16(b[4:]), le.Uint16(b[6:])
	if int(uidIdx) >= len(im.ids) || int(gidIdx) >= len(im.ids) {
		return corrupt("uid index %d or gid index %d not in the %d ids", uidIdx, gidIdx, len(im.ids))
	}
	ino.UID, ino.GID = im.ids[uidIdx], im.ids[gidIdx]
	if ino.Number == 0 || ino.Number > im.sb.inodes {
		return corrupt("inode number %d not in 1..%d", ino.Number, im.sb.inodes)
	}
	if t == 0 || t > maxType {
		return corrupt("inode type %d", t)
	}
	ext := t > extOffset
	if ext {
		t -= extOffset
	}
	ino.Type = Type(t)
	switch ino.Type {
	case Dir:
		err = im.readDirInode(&c, ino, ext)
	case File:
		err = im.readFileInode(&c, ino, ext)
	case Symlink:
		err = im.readSymlinkInode(&c, ino, ext)
	case BlockDev, CharDev:
		n := 8
		if ext {
			n = 12
		}
		if b, err = c.read(n); err == nil {
			ino.Nlink, ino.Rdev = le.Uint32(b[0:]), le.Uint32(b[4:])
			if ext {
				ino.xattr = le.Uint32(b[8:])
			}
		}
	default: // Fifo, Socket
		n := 4
		if ext {
			n = 8
		}
		if b, err = c.read(n); err == nil {
			ino.Nlink = le.Uint32(b[0:])
			if ext {
				ino.xattr = le.Uint32(b[4:])
			}
		}
	}
	if err != nil {
		return err
	}
	if ino.xattr != invalidXattr && ino.xattr >= im.xattrIDs {
		return corrupt("xattr index %d not in the %d xattr ids", ino.xattr, im.xattrIDs)
	}
	return nil
}

func (im *Image) readDirInode(c *cursor, ino *Inode, ext bool) error {
	le := binary.LittleEndian
	if !ext {
		b, err := c.read(dirSize)
		if err != nil {
			return err
		}
		ino.start = uint64(le.Uint32(b[0:]))
		ino.Nlink = le.Uint32(b[4:])
		ino.Size = uint64(le.Uint16(b[8:]))
		ino.dirOff = le.Uint16(b[10:])
	} else {
		b, err := c.read(extDirSize)
		if err != nil {
			return err
		}
		ino.Nlink = le.Uint32(b[0:])
		ino.Size = uint64(le.Uint32(b[4:]))
		ino.start = uint64(le.Uint32(b[8:]))
		ino.idxLen = le.Uint16(b[16:])
		ino.dirOff = le.Uint16(b[18:])
		ino.xattr = le.Uint32(b[20:])
		pos, off := c.where()
		ino.tailPos, ino.tailOff = pos, uint16(off)
	}
	if ino.dirOff >= metaSize {
		return corrupt("directory offset %d", ino.dirOff)
	}
	if ino.Size > dirDataOffset && ino.start >= im.dirEnd-im.sb.dirTable {
		return corrupt("directory listing at %d outside the directory table", ino.start)
	}
	return nil
}

func (im *Image) readFileInode(c *cursor, ino *Inode, ext bool) error {
	le := binary.LittleEndian
	if !ext {
		b, err := c.read(fileSize)
		if err != nil {
			return err
		}
		ino.start = uint64(le.Uint32(b[0:]))
		ino.frag = le.Uint32(b[4:])
		ino.fragOff = le.Uint32(b[8:])
		ino.Size = uint64(le.Uint32(b[12:]))
		ino.Nlink = 1
	} else {
		b, err := c.read(extFileSize)
		if err != nil {
			return err
		}
		ino.start = le.Uint64(b[0:])
		ino.Size = le.Uint64(b[8:])
		ino.Nlink = le.Uint32(b[24:])
		ino.frag = le.Uint32(b[28:])
		ino.fragOff = le.Uint32(b[32:])
		ino.xattr = le.Uint32(b[36:])
	}
	pos, off := c.where()
	ino.tailPos, ino.tailOff = pos, uint16(off)
	if ino.Size >= 1<<63 {
		return corrupt("file size %d", ino.Size)
	}
	if ino.frag != invalidFrag {
		if ino.frag >= im.sb.fragments {
			return corrupt("fragment %d not in the %d fragments", ino.frag, im.sb.fragments)
		}
		if ino.fragOff >= im.sb.blockSize {
			return corrupt("fragment offset %d", ino.fragOff)
		}
	}
	if im.blockCount(ino) > 0 && ino.start >= im.sb.bytesUsed {
		return corrupt("file data at %d outside the image", ino.start)
	}
	if im.blockCount(ino) > indexStride {
		ino.bi = im.indexes.get(ino)
	}
	return nil
}

func (im *Image) readSymlinkInode(c *cursor, ino *Inode, ext bool) error {
	le := binary.LittleEndian
	b, err := c.read(8)
	if err != nil {
		return err
	}
	ino.Nlink = le.Uint32(b[0:])
	ino.Size = uint64(le.Uint32(b[4:]))
	if ino.Size > maxSymlinkLen {
		return corrupt("symbolic link target of %d bytes", ino.Size)
	}
	pos, off := c.where()
	ino.tailPos, ino.tailOff = pos, uint16(off)
	if ext {
		if err := c.skip(ino.Size); err != nil {
			return err
		}
		if b, err = c.read(4); err != nil {
			return err
		}
		ino.xattr = le.Uint32(b)
	}
	return nil
}

// Readlink returns a symbolic link's target.
func (im *Image) Readlink(l *Inode) (string, error) {
	if l.Type != Symlink {
		return "", fmt.Errorf("reading the link at %#x: not a symbolic link", uint64(l.Ref))
	}
	if l.Size > maxSymlinkLen {
		return "", corrupt("symbolic link target of %d bytes", l.Size)
	}
	c := im.cursor(l.tailPos, int(l.tailOff), im.inodeEnd)
	defer c.close()
	b := make([]byte, l.Size)
	if err := c.readFull(b); err != nil {
		return "", fmt.Errorf("reading the link at %#x: %w", uint64(l.Ref), err)
	}
	return string(b), nil
}
