// Package sqfsfuse serves a SquashFS image (internal/squashfs) over FUSE's
// low-level protocol (go-fuse's RawFileSystem): what launch-squashfs runs
// in place of squashfuse_ll. It owns the mapping from FUSE's requests to
// the image: node ids, directory handles, attributes, and how long the
// kernel may cache what it was told (for as long as the mount lives: an
// image never changes under its mount, and a changed image file is a new
// mount).
//
// Requests are served in parallel (go-fuse starts a goroutine per request),
// so decompression runs on every CPU the payload leaves idle.
package sqfsfuse

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/launch-hpc/launch/internal/squashfs"
)

// forever is how long the kernel may cache names, attributes and data: the
// mount's whole life, as squashfuse does.
const forever = 365 * 24 * time.Hour

// maxLoggedErrors bounds what a corrupt image can make the server print.
const maxLoggedErrors = 10

// FS is the FUSE file system of one image. It is safe for concurrent use.
type FS struct {
	fuse.RawFileSystem // ENOSYS (or EROFS) for everything an image does not do

	im      *squashfs.Image
	root    *squashfs.Inode
	resumes resumes // where listings stopped (nodes_linux.go)

	// noOpen and noOpenDir: the kernel opens without asking when told
	// ENOSYS (CAP_NO_OPEN_SUPPORT, CAP_NO_OPENDIR_SUPPORT); set by Init.
	noOpen, noOpenDir bool

	errs   atomic.Int32 // errors logged so far
	logMu  sync.Mutex
	stderr io.Writer
}

// New returns the file system serving im; errors (a corrupt image found
// while serving) are reported on stderr, a bounded number of them.
func New(im *squashfs.Image, stderr io.Writer) (*FS, error) {
	root, err := im.Root()
	if err != nil {
		return nil, fmt.Errorf("reading the root directory: %w", err)
	}
	return &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		im:            im,
		root:          root,
		stderr:        stderr,
	}, nil
}

// String names the file system (go-fuse's debug output).
func (f *FS) String() string { return "launch-squashfs" }

// status turns an error of the image into a FUSE status, reporting the
// unexpected ones.
func (f *FS) status(what string, err error) fuse.Status {
	switch {
	case err == nil:
		return fuse.OK
	case errors.Is(err, fs.ErrNotExist):
		return fuse.ENOENT
	}
	if f.errs.Add(1) <= maxLoggedErrors {
		f.logMu.Lock()
		fmt.Fprintf(f.stderr, "launch-squashfs: %s: %v\n", what, err)
		f.logMu.Unlock()
	}
	return fuse.EIO
}

// inode is the image inode of a node id the kernel holds.
func (f *FS) inode(nodeid uint64) (*squashfs.Inode, fuse.Status) {
	if nodeid == fuse.FUSE_ROOT_ID {
		return f.root, fuse.OK
	}
	ino, err := f.im.Inode(refOf(nodeid))
	if err != nil {
		return nil, f.status(fmt.Sprintf("reading inode %d", nodeid), err)
	}
	return ino, fuse.OK
}

// Lookup finds name in the directory header.NodeId.
func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	dir, st := f.inode(h.NodeId)
	if !st.Ok() {
		return st
	}
	if dir.Type != squashfs.Dir {
		return fuse.ENOTDIR
	}
	ino, err := f.im.Lookup(dir, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A negative entry (node id 0, answered OK: go-fuse sends no
			// entry with ENOENT), which the kernel keeps too.
			*out = fuse.EntryOut{}
			out.SetEntryTimeout(forever)
			return fuse.OK
		}
		return f.status(fmt.Sprintf("looking up %q", name), err)
	}
	f.entry(ino, out)
	return fuse.OK
}

// entry fills out for ino.
func (f *FS) entry(ino *squashfs.Inode, out *fuse.EntryOut) {
	out.NodeId = nodeID(ino.Ref)
	out.SetEntryTimeout(forever)
	out.SetAttrTimeout(forever)
	f.attr(ino, &out.Attr)
}

// Forget is nothing to do: no node is kept for the kernel's references.
func (f *FS) Forget(nodeid, n uint64) {}

// GetAttr returns the attributes of in.NodeId.
func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	ino, st := f.inode(in.NodeId)
	if !st.Ok() {
		return st
	}
	out.SetTimeout(forever)
	f.attr(ino, &out.Attr)
	return fuse.OK
}

// attr fills a with ino's attributes as the kernel's squashfs driver
// reports them.
func (f *FS) attr(ino *squashfs.Inode, a *fuse.Attr) {
	a.Ino = uint64(ino.Number)
	a.Size = ino.Size
	a.Blocks = (ino.Size + 511) / 512
	a.Atime, a.Mtime, a.Ctime = uint64(ino.Mtime), uint64(ino.Mtime), uint64(ino.Mtime)
	a.Mode = ino.Mode()
	a.Nlink = ino.Nlink
	a.Owner = fuse.Owner{Uid: ino.UID, Gid: ino.GID}
	if ino.Type == squashfs.BlockDev || ino.Type == squashfs.CharDev {
		a.Rdev = ino.Rdev // both SquashFS and FUSE carry the kernel's new_encode_dev form
	}
	a.Blksize = f.im.BlockSize()
}

// Open answers ENOSYS, the first time and so the only time: the kernel
// then opens files without asking (no OPEN, no RELEASE: two requests of
// every open fewer) and keeps their pages across opens (FOPEN_KEEP_CACHE,
// its default without opens). The mount is read-only, so the kernel
// refuses opens for writing itself, and nothing is kept per open file.
// A kernel that does not know that is told yes, with the same caching.
func (f *FS) Open(_ <-chan struct{}, _ *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if f.noOpen {
		return fuse.ENOSYS
	}
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE
	return fuse.OK
}

// Flush answers ENOSYS, the first time and so the only time: nothing is
// written, and the kernel then stops sending a FLUSH on every close.
func (f *FS) Flush(_ <-chan struct{}, _ *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }

// Read reads a file's data.
func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	ino, st := f.inode(in.NodeId)
	if !st.Ok() {
		return nil, st
	}
	if int(in.Size) < len(buf) {
		buf = buf[:in.Size]
	}
	n, err := f.im.ReadAt(ino, buf, int64(in.Offset))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, f.status(fmt.Sprintf("reading inode %d at %d", ino.Number, in.Offset), err)
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

// Readlink returns a symbolic link's target.
func (f *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	ino, st := f.inode(h.NodeId)
	if !st.Ok() {
		return nil, st
	}
	if ino.Type != squashfs.Symlink {
		return nil, fuse.EINVAL
	}
	target, err := f.im.Readlink(ino)
	if err != nil {
		return nil, f.status(fmt.Sprintf("reading the link of inode %d", ino.Number), err)
	}
	return []byte(target), fuse.OK
}

// StatFs describes the image: all of it used, nothing free.
func (f *FS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	bs := uint64(f.im.BlockSize())
	out.Bsize = uint32(bs)
	out.Frsize = uint32(bs)
	out.Blocks = (f.im.BytesUsed() + bs - 1) / bs
	out.Files = uint64(f.im.InodeCount())
	out.NameLen = squashfs.MaxNameLen
	return fuse.OK
}

// Access is left to the kernel (the mount has default_permissions); an
// answer here would only be a request more.
func (f *FS) Access(_ <-chan struct{}, _ *fuse.AccessIn) fuse.Status { return fuse.ENOSYS }

// Init is called once the kernel's INIT has been answered, before any
// other request is served: it reads what the kernel can do.
func (f *FS) Init(s *fuse.Server) {
	flags := s.KernelSettings().Flags64()
	f.noOpen = flags&fuse.CAP_NO_OPEN_SUPPORT != 0
	f.noOpenDir = flags&fuse.CAP_NO_OPENDIR_SUPPORT != 0
}

// Diagnose describes why the server could not be started, for the error
// line: the helper prints it and exits.
func Diagnose(err error) string {
	switch {
	case errors.Is(err, squashfs.ErrUnsupported):
		return "the image uses a SquashFS feature launch-squashfs does not read: " + err.Error()
	case errors.Is(err, squashfs.ErrCorrupt):
		return "the image is damaged: " + err.Error()
	}
	return err.Error()
}
