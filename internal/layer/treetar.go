package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// Plan is a Tree listed for writing as one tar stream: first WriteStatic
// (every directory, link and fifo, and the files whose content is held in
// memory), then WriteLayer for each layer that holds content (Needs), which
// copies from the layer only the regular files the tree kept, under the
// names they have in the tree (hard links for their other names). Names
// are relative to the root ("./" is the root itself), owners numeric, times
// in whole seconds, no extended attributes.
type Plan struct {
	root    *attr // nil when written already (StreamLayer)
	static  []*tar.Header
	data    map[[2]int]*Inode // regular files by [layer, entry]
	layers  map[int]bool
	statics []*Inode // inodes written by WriteStatic, in order
}

// Plan lists the tree as it is now; it must not change afterwards.
func (t *Tree) Plan() *Plan {
	root := t.root.dir
	if t.root.emitted {
		root = nil
	}
	p := &Plan{root: root, data: map[[2]int]*Inode{}, layers: map[int]bool{}}
	var inos []*Inode
	seen := map[*Inode]bool{}
	var walk func(n *node, rel string)
	walk = func(n *node, rel string) {
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			c, pth := n.kids[k], k
			if rel != "" {
				pth = rel + "/" + k
			}
			if c.dir != nil {
				if !c.emitted {
					p.static = append(p.static, &tar.Header{Typeflag: tar.TypeDir, Name: pth, Mode: int64(c.dir.mode),
						Uid: c.dir.uid, Gid: c.dir.gid, ModTime: sec(c.dir.mtime)})
				}
				walk(c, pth)
				continue
			}
			if c.emitted {
				continue // written by StreamLayer, with every name of its inode
			}
			if !seen[c.ino] {
				seen[c.ino] = true
				c.ino.names = nil
				inos = append(inos, c.ino)
			}
			c.ino.names = append(c.ino.names, pth)
		}
	}
	walk(t.root, "")
	for _, ino := range inos {
		if ino.Type == tar.TypeReg && !ino.Captured() {
			p.data[[2]int{ino.Layer, ino.Entry}] = ino
			p.layers[ino.Layer] = true
			continue
		}
		p.statics = append(p.statics, ino)
	}
	return p
}

// sec is t in whole seconds, within what SquashFS can hold (0 to 2^32-1).
func sec(t time.Time) time.Time {
	return time.Unix(min(max(t.Unix(), 0), math.MaxUint32), 0)
}

// Needs reports whether layer index holds content of the tree.
func (p *Plan) Needs(index int) bool { return p.layers[index] }

func header(ino *Inode, name string) *tar.Header {
	h := &tar.Header{Typeflag: ino.Type, Name: name, Mode: int64(ino.Mode), Uid: ino.UID, Gid: ino.GID,
		ModTime: sec(ino.ModTime), Linkname: ino.Linkname}
	if ino.Type == tar.TypeReg {
		h.Size = ino.Size
	}
	return h
}

// links writes the other names of ino as hard links to its first.
func links(tw *tar.Writer, ino *Inode) error {
	for _, n := range ino.names[1:] {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: n, Linkname: ino.names[0], ModTime: sec(ino.ModTime)}); err != nil {
			return err
		}
	}
	return nil
}

// WriteStatic writes the root, the directories, the links and fifos, and
// the files held in memory.
func (p *Plan) WriteStatic(tw *tar.Writer) error {
	if p.root != nil {
		if err := tw.WriteHeader(rootHeader(p.root)); err != nil {
			return err
		}
	}
	for _, h := range p.static {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	for _, ino := range p.statics {
		if err := tw.WriteHeader(header(ino, ino.names[0])); err != nil {
			return err
		}
		if ino.Type == tar.TypeReg {
			if _, err := tw.Write(ino.Data); err != nil {
				return err
			}
		}
		if err := links(tw, ino); err != nil {
			return err
		}
	}
	return nil
}

// WriteLayer reads the uncompressed tar r of layer index (the same bytes
// Tree.Layer read) to its end and writes the content of the regular files
// the tree kept from it.
func (p *Plan) WriteLayer(index int, r io.Reader, tw *tar.Writer, buf []byte) error {
	tr := tar.NewReader(r)
	for entry := 0; ; entry++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", tarErr(err))
		}
		ino := p.data[[2]int{index, entry}]
		if ino == nil {
			continue
		}
		if hdr.Size != ino.Size {
			return fmt.Errorf("layer tar changed between two reads (entry %d)", entry)
		}
		if err := tw.WriteHeader(header(ino, ino.names[0])); err != nil {
			return err
		}
		n, err := io.CopyBuffer(tw, tr, buf)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("reading layer tar: %w", tarErr(err))
			}
			return err
		}
		if n != ino.Size {
			return fmt.Errorf("reading layer tar: /%s: %w", ino.names[0], tarErr(io.ErrUnexpectedEOF))
		}
		if err := links(tw, ino); err != nil {
			return err
		}
	}
}
