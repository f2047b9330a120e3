package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNotStreamable is wrapped by the errors of a Tree for a layer it cannot
// reproduce exactly as Apply would leave it (a parent reached through a
// symbolic link, a hard link to something missing, a name too long for a
// directory tree, ...): the caller then applies the layers to a directory
// with Apply instead, which gives the same tree or the error.
var ErrNotStreamable = errors.New("not streamable")

// notStreamable is an ErrNotStreamable error giving the reason.
func notStreamable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotStreamable, fmt.Sprintf(format, args...))
}

// TreeOptions change how a Tree applies layers.
type TreeOptions struct {
	// KeepOwner keeps the tar's uid/gid (Options.KeepOwner); otherwise
	// everything belongs to root (what a user's build records).
	KeepOwner bool
	// Umask is the file mode creation mask Apply's implicit directories
	// and fifos are made under.
	Umask uint32
	// Capture says whether the content of the regular file at path (a
	// clean path relative to the root) is kept in memory, for reading the
	// image's metadata; at most MaxCapture bytes a file and in all.
	Capture func(path string) bool
	// PathSlack is the length of the directory Apply would extract into:
	// a name that Apply would refuse as too long is not streamable.
	PathSlack int
	// Now is the time of what Apply would stamp with the time it runs.
	Now time.Time
}

// MaxCapture bounds the content of one captured file, and of all.
const MaxCapture = 1 << 20

const maxCaptureTotal = 16 << 20

// Tree is what applying layers in order to an empty directory with Apply
// leaves, held in memory as names and attributes only (the content of
// regular files stays in the layers, by layer and entry number), so that
// the tree can be written as a tar stream (WriteStatic, WriteLayer) with
// no directory on disk. It follows Apply's rules entry by entry: names
// confined to the root, whiteouts and opaque directories, device nodes left
// out, set-uid and set-gid bits cleared, modes made usable by the owner,
// hard links only to what the tree holds, Options.MaxSize per layer.
type Tree struct {
	o        TreeOptions
	out      *online // set while StreamLayer runs
	root     *node
	layer    int // the layer being applied
	entry    int // number of the entry being applied in it
	written  map[string]bool
	opaque   []string
	stats    Stats
	captured int
}

// node is one name in the tree: a directory (dir set) or a name of an inode.
type node struct {
	kids    map[string]*node // a directory's entries
	dir     *attr            // a directory's attributes
	ino     *Inode           // otherwise
	emitted bool             // written by StreamLayer already
}

type attr struct {
	mode     uint32
	uid, gid int
	mtime    time.Time
}

// Inode is a non-directory of the tree: a regular file, symbolic link or
// fifo, with each of its names.
type Inode struct {
	Type     byte // tar.TypeReg, tar.TypeSymlink or tar.TypeFifo
	Mode     uint32
	UID, GID int
	ModTime  time.Time
	Size     int64
	Linkname string // a symbolic link's target
	// Layer and Entry locate a regular file's content: the entry's number
	// in its layer, from 0. Layer is -1 for content held in Data.
	Layer, Entry int
	// Data is the content when captured or written by WriteFile.
	Data     []byte
	captured bool
	names    []string // set by plan
}

// NewTree returns an empty tree: the root directory, 0755, of root.
func NewTree(o TreeOptions) *Tree {
	return &Tree{o: o, root: &node{kids: map[string]*node{}, dir: &attr{mode: 0o755 &^ o.Umask, mtime: o.Now}}, layer: -1}
}

// Layer applies the uncompressed layer tar r (the layer numbered index,
// from 0 at the bottom, in the order they are applied) to the tree, with
// maxSize as Options.MaxSize. Errors are Apply's for the same layer, or
// wrap ErrNotStreamable.
func (t *Tree) Layer(index int, r io.Reader, maxSize int64) (Stats, error) {
	t.layer, t.entry = index, -1
	t.written, t.opaque, t.stats = map[string]bool{}, nil, Stats{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return t.stats, fmt.Errorf("reading layer tar: %w", tarErr(err))
		}
		t.entry++
		t.stats.Entries++
		if err := t.add(hdr, tr, maxSize); err != nil {
			return t.stats, err
		}
	}
	for _, d := range t.opaque {
		if err := t.pruneOpaque(d); err != nil {
			return t.stats, err
		}
	}
	return t.stats, nil
}

// walk returns the directory node of the clean relative path dir, making
// missing directories when mk (as Apply's parent does), nil when a
// component is missing and !mk. A component that is a symbolic link is not
// streamable; one that is another non-directory is errNotDir.
func (t *Tree) walk(dir string, mk bool) (*node, error) {
	n := t.root
	if dir == "" {
		return n, nil
	}
	prefix := ""
	for _, c := range strings.Split(dir, "/") {
		if prefix == "" {
			prefix = c
		} else {
			prefix += "/" + c
		}
		k := n.kids[c]
		switch {
		case k == nil && !mk:
			return nil, nil
		case k == nil:
			k = &node{kids: map[string]*node{}, dir: &attr{mode: 0o755 &^ t.o.Umask, mtime: t.o.Now}}
			n.kids[c] = k
			if err := t.emitDir(prefix, k); err != nil {
				return nil, err
			}
		case k.dir == nil && k.ino.Type == tar.TypeSymlink:
			return nil, notStreamable("/%s is reached through the symbolic link %s", dir, c)
		case k.dir == nil:
			return nil, errNotDir
		}
		n = k
	}
	return n, nil
}

var errNotDir = notStreamable("a parent is not a directory")

func (t *Tree) owner(hdr *tar.Header) (int, int) {
	if t.o.KeepOwner {
		return hdr.Uid, hdr.Gid
	}
	return 0, 0
}

// add applies one entry, as applier.entry does.
func (t *Tree) add(hdr *tar.Header, r io.Reader, maxSize int64) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil
	}
	if t.o.PathSlack+1+len(name) >= 4096-64 {
		return notStreamable("/%s is a long name", name)
	}
	for _, c := range strings.Split(name, "/") {
		if len(c) > 255 {
			return notStreamable("/%s has a long component", name)
		}
	}
	dir, base := split(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return t.whiteout(dir, base)
	}
	keep, tn, err := admit(hdr, name, &t.stats, maxSize)
	if !keep || err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink {
		// Apply removes what is at name first, then links: the target
		// is looked up after the removal below.
		pd, err := t.walk(dir, true)
		if err != nil {
			return err
		}
		t.markWritten(name)
		if err := t.remove(pd, base); err != nil {
			return err
		}
		tdir, tbase := split(tn)
		td, err := t.walk(tdir, false)
		if err != nil {
			return err
		}
		if td == nil || td.kids[tbase] == nil {
			return notStreamable("hard link /%s to /%s, which is missing", name, tn)
		}
		tk := td.kids[tbase]
		if tk.dir != nil {
			return notStreamable("hard link /%s to the directory /%s", name, tn)
		}
		k := &node{ino: tk.ino}
		pd.kids[base] = k
		return t.emitLink(name, tn, k, tk)
	}
	pd, err := t.walk(dir, true)
	if err != nil {
		return err
	}
	t.markWritten(name)
	uid, gid := t.owner(hdr)
	if hdr.Typeflag == tar.TypeDir {
		if k := pd.kids[base]; k != nil && k.dir != nil {
			if k.emitted && (k.dir.mode != dirMode(hdr) || t.o.KeepOwner && (k.dir.uid != uid || k.dir.gid != gid)) {
				return fmt.Errorf("%w: /%s is changed by a later entry", ErrRestart, name)
			}
			k.dir.mode = dirMode(hdr)
			if t.o.KeepOwner {
				k.dir.uid, k.dir.gid = uid, gid
			}
			return nil
		}
		if err := t.remove(pd, base); err != nil {
			return err
		}
		k := &node{kids: map[string]*node{}, dir: &attr{mode: dirMode(hdr), uid: uid, gid: gid, mtime: hdr.ModTime}}
		pd.kids[base] = k
		return t.emitDir(name, k)
	}
	if err := t.remove(pd, base); err != nil {
		return err
	}
	ino := &Inode{Type: hdr.Typeflag, Mode: fileMode(hdr), UID: uid, GID: gid, ModTime: hdr.ModTime, Layer: t.layer, Entry: t.entry}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		ino.Mode, ino.Linkname = 0o777, hdr.Linkname
	case tar.TypeFifo:
		ino.Mode &^= t.o.Umask
		ino.ModTime = t.o.Now
	default:
		ino.Type, ino.Size = tar.TypeReg, hdr.Size
		if t.o.Capture != nil && t.o.Capture(name) {
			if err := t.capture(ino, name, r); err != nil {
				return err
			}
		}
	}
	k := &node{ino: ino}
	pd.kids[base] = k
	return t.emitInode(name, k, r)
}

// capture keeps the content of a metadata file.
func (t *Tree) capture(ino *Inode, name string, r io.Reader) error {
	if ino.Size > MaxCapture || t.captured+int(ino.Size) > maxCaptureTotal {
		return notStreamable("/%s is a large metadata file", name)
	}
	b := make([]byte, ino.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("extracting /%s: writing file: %w", name, tarErr(err))
	}
	t.captured += len(b)
	ino.Data, ino.captured = b, true
	return nil
}

// remove removes base from the directory pd (with everything below it).
// What StreamLayer wrote already cannot be removed (ErrRestart).
func (t *Tree) remove(pd *node, base string) error {
	if k := pd.kids[base]; k != nil && k.emitted {
		return fmt.Errorf("%w: %s is removed or replaced by a later entry", ErrRestart, base)
	}
	delete(pd.kids, base)
	return nil
}

func (t *Tree) markWritten(p string) {
	for p != "" && !t.written[p] {
		t.written[p] = true
		p, _ = split(p)
	}
}

// whiteout is applier.whiteout.
func (t *Tree) whiteout(dir, base string) error {
	if base == opaqueMarker {
		t.opaque = append(t.opaque, dir)
		t.markWritten(dir)
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		t.stats.Skipped++
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return fmt.Errorf("%w: whiteout %s/%s names no file", ErrHostile, dir, base)
	}
	// Apply opens dir inside the root: a missing component, or one
	// before the last that is not a directory, is nothing to hide; dir
	// itself not a directory is an error (Apply's, through the fallback).
	up, last := split(dir)
	pd, err := t.walk(up, false)
	if errors.Is(err, errNotDir) {
		return nil
	}
	if err != nil || pd == nil {
		return err
	}
	if last != "" {
		k := pd.kids[last]
		switch {
		case k == nil:
			return nil
		case k.dir == nil && k.ino.Type == tar.TypeSymlink:
			return notStreamable("whiteout %s/%s is reached through the symbolic link %s", dir, base, last)
		case k.dir == nil:
			return notStreamable("whiteout %s/%s is below a file", dir, base)
		}
		pd = k
	}
	return t.remove(pd, victim)
}

// pruneOpaque is applier.pruneOpaque.
func (t *Tree) pruneOpaque(dir string) error {
	pd, err := t.walk(dir, false)
	if err != nil || pd == nil {
		return err
	}
	return t.prune(pd, dir)
}

func (t *Tree) prune(d *node, rel string) error {
	for n, k := range d.kids {
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if !t.written[p] {
			if err := t.remove(d, n); err != nil {
				return err
			}
		} else if k.dir != nil {
			if err := t.prune(k, p); err != nil {
				return err
			}
		}
	}
	return nil
}
