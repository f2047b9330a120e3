package sqfsfuse

import (
	"fmt"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/launch-hpc/launch/internal/squashfs"
)

// OpenDir answers ENOSYS, as Open does: the kernel then opens
// directories without asking and keeps what it reads of them for the
// mount's life (FOPEN_CACHE_DIR, its default without opendir), and
// readdir comes with no handle.
// A kernel that does not know that (before Linux 5.1) would fail the
// opendir: it is told yes, with the same caching.
func (f *FS) OpenDir(_ <-chan struct{}, _ *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if f.noOpenDir {
		return fuse.ENOSYS
	}
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_CACHE_DIR
	return fuse.OK
}

// ReadDir lists a directory from in.Offset: offset 0 is ".", 1 "..",
// and 2+p the image's entry at listing position p (squashfs.ListFrom), so
// each page of a large directory goes on where the last ended: from where
// its decoding stopped, when that is kept (resumes), else through the
// directory index.
func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, false)
}

// ReadDirPlus is ReadDir with each entry's attributes, which the kernel
// counts as a lookup of it.
func (f *FS) ReadDirPlus(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return f.readDir(in, out, true)
}

// dotEntries is how many offsets "." and ".." take before the listing.
const dotEntries = 2

func (f *FS) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	dir, st := f.inode(in.NodeId)
	if !st.Ok() {
		return st
	}
	if dir.Type != squashfs.Dir {
		return fuse.ENOTDIR
	}
	for off := in.Offset; off < dotEntries; off++ {
		e := fuse.DirEntry{Off: off + 1, Mode: syscall.S_IFDIR, Ino: uint64(dir.Number), Name: "."}
		if off == 1 {
			e.Name = ".."
		}
		// The kernel looks "." and ".." up by itself (node id 0).
		if plus && out.AddDirLookupEntry(e) == nil || !plus && !out.AddDirEntry(e) {
			return fuse.OK
		}
	}
	pos := max(in.Offset, dotEntries) - dotEntries
	res := f.resumes.get(in.NodeId)
	err := f.im.ListFrom(dir, pos, &res, func(ent squashfs.DirEntry, end uint64) bool {
		e := fuse.DirEntry{Off: end + dotEntries, Name: ent.Name, Ino: uint64(ent.Number), Mode: ent.Type.Mode()}
		if !plus {
			return out.AddDirEntry(e)
		}
		// Decode the inode before taking the slot: an entry whose inode is
		// unreadable is left out of a listing that goes on.
		ino, err := f.im.Inode(ent.Ref)
		if err != nil {
			f.status(fmt.Sprintf("reading inode %d of %q", ent.Number, ent.Name), err)
			return true
		}
		eo := out.AddDirLookupEntry(e)
		if eo == nil {
			return false
		}
		f.entry(ino, eo)
		return true
	})
	if err != nil {
		return f.status(fmt.Sprintf("reading directory inode %d", dir.Number), err)
	}
	f.resumes.put(in.NodeId, res)
	return fuse.OK
}

// GetXAttr returns one extended attribute.
func (f *FS) GetXAttr(_ <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	if !f.im.HasXattrs() {
		return 0, fuse.ENOATTR // as the kernel's driver answers
	}
	ino, st := f.inode(h.NodeId)
	if !st.Ok() {
		return 0, st
	}
	xs, err := f.im.Xattrs(ino)
	if err != nil {
		return 0, f.status(fmt.Sprintf("reading the xattrs of inode %d", ino.Number), err)
	}
	for _, x := range xs {
		if x.Name != attr {
			continue
		}
		if len(dest) == 0 {
			return uint32(len(x.Value)), fuse.OK
		}
		if len(dest) < len(x.Value) {
			return uint32(len(x.Value)), fuse.ERANGE
		}
		return uint32(copy(dest, x.Value)), fuse.OK
	}
	return 0, fuse.ENOATTR
}

// ListXAttr lists the extended attributes' names, each ended by a NUL.
func (f *FS) ListXAttr(_ <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	if !f.im.HasXattrs() {
		return 0, fuse.OK
	}
	ino, st := f.inode(h.NodeId)
	if !st.Ok() {
		return 0, st
	}
	xs, err := f.im.Xattrs(ino)
	if err != nil {
		return 0, f.status(fmt.Sprintf("reading the xattrs of inode %d", ino.Number), err)
	}
	var names []byte
	for _, x := range xs {
		names = append(append(names, x.Name...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(names)), fuse.OK
	}
	if len(dest) < len(names) {
		return uint32(len(names)), fuse.ERANGE
	}
	return uint32(copy(dest, names)), fuse.OK
}
