package squashfs

import (
	"reflect"
	"strings"
	"testing"
)

// TestListFrom holds the resumable listing to ReadDir on every image: the
// whole listing, a resume after each entry, and a start at positions that
// are not an entry's end (inside entries and headers), which go on with
// the first entry not wholly before them.
func TestListFrom(t *testing.T) {
	for _, tc := range imageCases {
		t.Run(tc.name, func(t *testing.T) {
			_, raw := sharedImage(t, tc.args...)
			im := openAt(t, raw, tc.offset, Options{})
			root, err := im.Root()
			must(t, err)
			for _, path := range []string{"", "big", "empty/a", "files"} {
				dir := root
				for _, name := range strings.FieldsFunc(path, func(r rune) bool { return r == '/' }) {
					if dir, err = im.Lookup(dir, name); err != nil {
						t.Fatalf("Lookup %q of %q: %v", name, path, err)
					}
				}
				if path == "big" && dir.idxLen == 0 {
					t.Fatalf("%q has no directory index: resuming through one goes untested", path)
				}
				checkListFrom(t, im, dir, path)
			}
		})
	}
}

func checkListFrom(t *testing.T, im *Image, dir *Inode, path string) {
	t.Helper()
	want, err := im.ReadDir(dir)
	must(t, err)
	var got []DirEntry
	var ends []uint64
	must(t, im.ListFrom(dir, 0, nil, func(e DirEntry, end uint64) bool {
		got, ends = append(got, e), append(ends, end)
		return true
	}))
	if !reflect.DeepEqual(got, want) && len(want)+len(got) > 0 {
		t.Fatalf("%q: ListFrom(0) gave %d entries, ReadDir %d", path, len(got), len(want))
	}
	for i := 1; i < len(ends); i++ {
		if ends[i] <= ends[i-1] {
			t.Fatalf("%q: entry %d ends at %d, entry %d at %d", path, i, ends[i], i-1, ends[i-1])
		}
	}
	// Paging with a resume point, three entries a page, as the FUSE
	// server pages, lists what ReadDir does; a resume point recorded for
	// another position is not used.
	var paged []DirEntry
	var res DirResume
	for pos := uint64(0); ; {
		n := 0
		must(t, im.ListFrom(dir, pos, &res, func(e DirEntry, end uint64) bool {
			if n == 3 {
				return false
			}
			paged, pos, n = append(paged, e), end, n+1
			return true
		}))
		if n == 0 {
			break
		}
		if len(paged) < len(want) && (!res.ok || res.end != pos) {
			t.Fatalf("%q: a page ending at %d recorded the resume point %+v", path, pos, res)
		}
	}
	if !reflect.DeepEqual(paged, want) && len(want)+len(paged) > 0 {
		t.Fatalf("%q: paging with resume points gave %d entries, ReadDir %d", path, len(paged), len(want))
	}
	if len(ends) > 2 {
		var stale DirResume
		must(t, im.ListFrom(dir, ends[0], &stale, func(DirEntry, uint64) bool { return false }))
		var got DirEntry
		must(t, im.ListFrom(dir, ends[1], &stale, func(e DirEntry, _ uint64) bool { got = e; return false }))
		if got != want[2] {
			t.Errorf("%q: a resume point for another position gave %+v, want %+v", path, got, want[2])
		}
	}
	// first is the entry ListFrom(pos) starts with, -1 for none.
	first := func(pos uint64) int {
		n := -1
		must(t, im.ListFrom(dir, pos, nil, func(e DirEntry, _ uint64) bool {
			for i := range want {
				if want[i] == e {
					n = i
				}
			}
			return false
		}))
		return n
	}
	// After each entry's end comes the next entry, a page at a time.
	for i, end := range ends {
		wantNext := i + 1
		if wantNext == len(ends) {
			wantNext = -1
		}
		if n := first(end); n != wantNext {
			t.Errorf("%q: ListFrom(end of entry %d = %d) starts with entry %d, want %d", path, i, end, n, wantNext)
		}
	}
	// Any other position goes on with the first entry that ends after it.
	if len(ends) == 0 {
		return
	}
	for pos := uint64(0); pos < ends[len(ends)-1]+20; pos += 5 {
		wantNext := -1
		for i, end := range ends {
			if end > pos {
				wantNext = i
				break
			}
		}
		if n := first(pos); n != wantNext {
			t.Errorf("%q: ListFrom(%d) starts with entry %d, want %d", path, pos, n, wantNext)
		}
	}
}
