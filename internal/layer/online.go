package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
)

// ErrRestart is wrapped by the error of StreamLayer for an entry that would
// change what it wrote already (a name given twice, a whiteout of an entry
// of the same layer, ...): the layer is then read again into a new Tree
// with Layer, and written with Plan, which gets it right.
var ErrRestart = errors.New("the layer changes what was streamed already")

// online is the state of StreamLayer.
type online struct {
	tw  *tar.Writer
	buf []byte
}

// StreamLayer applies the only layer of an image (index 0) to an empty Tree
// as Layer does, and writes each entry to tw as soon as it is applied, its
// content copied from r: one read of the layer instead of two. The files
// TreeOptions.Capture selects are held back (the image metadata), as is
// whatever is added afterwards (WriteFile, Mkdir, Symlink): Plan then lists
// only those, for WriteStatic. An entry that changes what was written
// already is ErrRestart.
func (t *Tree) StreamLayer(r io.Reader, maxSize int64, tw *tar.Writer, buf []byte) (Stats, error) {
	if t.layer != -1 {
		return Stats{}, errors.New("StreamLayer: the tree has layers already")
	}
	if err := tw.WriteHeader(rootHeader(t.root.dir)); err != nil {
		return Stats{}, err
	}
	t.root.emitted = true
	t.out = &online{tw: tw, buf: buf}
	defer func() { t.out = nil }()
	return t.Layer(0, r, maxSize)
}

func rootHeader(a *attr) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: int64(a.mode), Uid: a.uid, Gid: a.gid, ModTime: sec(a.mtime)}
}

// held reports whether StreamLayer holds back the entry p.
func (t *Tree) held(p string) bool {
	return t.out == nil || t.o.Capture != nil && t.o.Capture(p)
}

func (t *Tree) emitDir(p string, k *node) error {
	if t.held(p) {
		return nil
	}
	a := k.dir
	if err := t.out.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: int64(a.mode), Uid: a.uid, Gid: a.gid, ModTime: sec(a.mtime)}); err != nil {
		return err
	}
	k.emitted = true
	return nil
}

// emitInode writes the new inode node k at p, a regular file's content
// read from r (or held in memory when captured).
func (t *Tree) emitInode(p string, k *node, r io.Reader) error {
	if t.held(p) {
		return nil
	}
	ino := k.ino
	if err := t.out.tw.WriteHeader(header(ino, p)); err != nil {
		return err
	}
	if ino.Type == tar.TypeReg {
		if ino.captured {
			if _, err := t.out.tw.Write(ino.Data); err != nil {
				return err
			}
		} else {
			n, err := io.CopyBuffer(t.out.tw, r, t.out.buf)
			if err != nil {
				return fmt.Errorf("extracting /%s: writing file: %w", p, tarErr(err))
			}
			if n != ino.Size {
				return fmt.Errorf("extracting /%s: writing file: %w", p, tarErr(io.ErrUnexpectedEOF))
			}
		}
	}
	k.emitted = true
	return nil
}

// emitLink writes the new name p (node k) of the inode of target (at tn).
func (t *Tree) emitLink(p, tn string, k, target *node) error {
	if t.out == nil {
		return nil
	}
	if t.held(p) != t.held(tn) || !t.held(tn) && !target.emitted {
		return fmt.Errorf("%w: hard link /%s to /%s, one of them held back", ErrRestart, p, tn)
	}
	if t.held(p) {
		return nil
	}
	if err := t.out.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: p, Linkname: tn, ModTime: sec(k.ino.ModTime)}); err != nil {
		return err
	}
	k.emitted = true
	return nil
}
