package rootplan

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// Index answers what the pristine image holds, from directory listings
// where it has read them and from Lstat otherwise, through an io/fs.FS view
// of the image (os.DirFS of the image's mount in the stage, fstest.MapFS in
// tests). On a fresh FUSE mount every answer the kernel has not cached is a
// round trip to the server, which serves one request at a time; a listing
// read once (an underlay needs it anyway) answers every later question about
// its entries.
type Index struct {
	fsys  fs.FS
	lists map[string][]fs.DirEntry          // image directory ("/", "/etc") → entries, sorted
	types map[string]map[string]fs.FileMode // the same, name → type bits
}

// NewIndex returns an index of fsys, which reads nothing yet.
func NewIndex(fsys fs.FS) *Index {
	return &Index{fsys: fsys, lists: map[string][]fs.DirEntry{}, types: map[string]map[string]fs.FileMode{}}
}

// fsName turns an absolute clean image path into an fs.FS name.
func fsName(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

// List returns the entries of the image directory dir (absolute, clean),
// read once.
func (x *Index) List(dir string) ([]fs.DirEntry, error) {
	if l, ok := x.lists[dir]; ok {
		return l, nil
	}
	l, err := fs.ReadDir(x.fsys, fsName(dir))
	if err != nil {
		return nil, err
	}
	m := make(map[string]fs.FileMode, len(l))
	for _, e := range l {
		m[e.Name()] = e.Type()
	}
	x.lists[dir], x.types[dir] = l, m
	return l, nil
}

// Lookup returns the type of the image's entry p (an absolute, clean path
// other than "/") and whether there is one. Symbolic links are not followed.
func (x *Index) Lookup(p string) (fs.FileMode, bool, error) {
	if m, ok := x.types[path.Dir(p)]; ok {
		t, found := m[path.Base(p)]
		return t, found, nil
	}
	fi, err := fs.Lstat(x.fsys, fsName(p))
	switch {
	case err == nil:
		return fi.Mode().Type(), true, nil
	case errors.Is(err, fs.ErrNotExist):
		return 0, false, nil
	}
	return 0, false, err
}
