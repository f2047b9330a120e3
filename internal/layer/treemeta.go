package layer

import (
	"archive/tar"
	"errors"
	"sort"
	"strings"
)

// What the metadata plan reads of a Tree and adds to it.

// Lookup finds the clean relative path p without following any link: ok
// is whether it exists, isDir whether it is a directory, ino the inode of
// anything else. A parent that is not a directory is not streamable.
func (t *Tree) Lookup(p string) (ok, isDir bool, ino *Inode, err error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return true, true, nil, nil
	}
	dir, base := split(p)
	d, err := t.walk(dir, false)
	if errors.Is(err, errNotDir) {
		return false, false, nil, notStreamable("a parent of /%s is not a directory", p)
	}
	if err != nil || d == nil || d.kids[base] == nil {
		return false, false, nil, err
	}
	k := d.kids[base]
	return true, k.dir != nil, k.ino, nil
}

// ReadDir returns the names in the directory p (sorted) with their inodes
// (nil for directories); nil when p is not a directory.
func (t *Tree) ReadDir(p string) ([]string, []*Inode, error) {
	d, err := t.walk(strings.Trim(p, "/"), false)
	if err != nil || d == nil {
		if errors.Is(err, errNotDir) {
			err = nil
		}
		return nil, nil, err
	}
	names := make([]string, 0, len(d.kids))
	for n := range d.kids {
		names = append(names, n)
	}
	sort.Strings(names)
	inos := make([]*Inode, len(names))
	for i, n := range names {
		inos[i] = d.kids[n].ino
	}
	return names, inos, nil
}

// Captured reports whether ino's content is held in Data.
func (ino *Inode) Captured() bool { return ino.captured || ino.Layer < 0 }

// WriteFile puts a regular file of content data and mode at p, owned by
// root, as build.WriteInRoot does: missing parents are made (0755 less the
// umask), what is at p replaced unless it is a directory.
func (t *Tree) WriteFile(p string, data []byte, mode uint32) error {
	dir, base := split(strings.Trim(p, "/"))
	d, err := t.walk(dir, true)
	if err != nil {
		return err
	}
	if k := d.kids[base]; k != nil && k.dir != nil {
		return notStreamable("/%s is a directory", p)
	}
	if err := t.remove(d, base); err != nil {
		return err
	}
	d.kids[base] = &node{ino: &Inode{Type: tar.TypeReg, Mode: mode, ModTime: t.o.Now, Size: int64(len(data)), Layer: -1, Data: data}}
	return nil
}

// Mkdir makes the directory p and its missing parents (0755 less the
// umask, root's), as securejoin.MkdirAllHandle does with mode 0755; mode
// sets the mode of p when it is made with one given (build's pseudo
// directories).
func (t *Tree) Mkdir(p string, mode uint32, exact bool) error {
	p = strings.Trim(p, "/")
	dir, base := split(p)
	if p == "" {
		return nil
	}
	d, err := t.walk(dir, true)
	if err != nil {
		return err
	}
	if k := d.kids[base]; k != nil {
		if k.dir == nil {
			return notStreamable("/%s is not a directory", p)
		}
		return nil
	}
	if !exact {
		mode &^= t.o.Umask
	}
	d.kids[base] = &node{kids: map[string]*node{}, dir: &attr{mode: mode, mtime: t.o.Now}}
	return nil
}

// Symlink makes p a symbolic link to target unless something is there.
func (t *Tree) Symlink(p, target string) error {
	dir, base := split(strings.Trim(p, "/"))
	d, err := t.walk(dir, true)
	if err != nil {
		return err
	}
	if d.kids[base] == nil {
		d.kids[base] = &node{ino: &Inode{Type: tar.TypeSymlink, Mode: 0o777, ModTime: t.o.Now, Linkname: target, Layer: -1}}
	}
	return nil
}
