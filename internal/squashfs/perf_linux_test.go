package squashfs

import (
	"strings"
	"testing"
)

// lookupPath looks up a slash path from the root.
func lookupPath(tb testing.TB, im *Image, names ...string) *Inode {
	tb.Helper()
	ino, err := im.Root()
	must(tb, err)
	for _, n := range names {
		if ino, err = im.Lookup(ino, n); err != nil {
			tb.Fatalf("Lookup %q: %v", n, err)
		}
	}
	return ino
}

// TestLookupUsesIndex checks that a lookup in a big directory reads a few
// metadata blocks through the directory index, where a scan reads many.
func TestLookupUsesIndex(t *testing.T) {
	_, raw := sharedImage(t, "-comp", "gzip")
	for _, name := range []string{"entry-0001-x", "entry-1500", "entry-2999-" + strings.Repeat("x", 2999%40)} {
		im := openAt(t, raw, 0, Options{MetaBlocks: 4096})
		big := lookupPath(t, im, "big")
		if big.idxLen == 0 {
			t.Fatal("the 3000-entry directory has no index")
		}
		before := im.meta.loads.Load()
		_, err := im.Lookup(big, name)
		if name == "entry-1500" {
			if err == nil {
				t.Fatal("found entry-1500, which has a suffix")
			}
		} else {
			must(t, err)
		}
		withIndex := im.meta.loads.Load() - before

		im = openAt(t, raw, 0, Options{MetaBlocks: 4096})
		big = lookupPath(t, im, "big")
		big.idxLen = 0
		before = im.meta.loads.Load()
		im.Lookup(big, name)
		scan := im.meta.loads.Load() - before
		t.Logf("%s: %d metadata blocks with the index, %d without", name, withIndex, scan)
		if withIndex > 4 || name > "entry-1" && scan < 8 {
			t.Errorf("%s: %d metadata blocks read with the index, %d without", name, withIndex, scan)
		}
	}
}

// TestReadAtDecompressions checks that reading a block decompresses it
// once, that a cached block is not decompressed again, and that a read
// spanning blocks decompresses each once.
func TestReadAtDecompressions(t *testing.T) {
	_, raw := sharedImage(t, "-comp", "gzip")
	im := openAt(t, raw, 0, Options{CacheBlocks: 32})
	f := lookupPath(t, im, "files", "size-2109497")
	p := make([]byte, 131072)
	for i, want := range []int64{1, 0} {
		before := im.data.loads.Load()
		if n, err := im.ReadAt(f, p, 131072); n != len(p) || err != nil {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		if got := im.data.loads.Load() - before; got != want {
			t.Errorf("read %d of a block: %d decompressions, want %d", i+1, got, want)
		}
	}
	before := im.data.loads.Load()
	big := make([]byte, 12*131072)
	if n, err := im.ReadAt(f, big, 2*131072); n != len(big) || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if got := im.data.loads.Load() - before; got != 12 {
		t.Errorf("read of 12 blocks: %d decompressions, want 12", got)
	}
}

// TestReadAhead checks that a read starts decompressing the next blocks.
func TestReadAhead(t *testing.T) {
	_, raw := sharedImage(t, "-comp", "gzip")
	im := openAt(t, raw, 0, Options{CacheBlocks: 32, ReadAhead: 3})
	im.sem = make(chan struct{}, 8) // as many background loads as the test wants
	f := lookupPath(t, im, "files", "size-2109497")
	p := make([]byte, 100)
	if _, err := im.ReadAt(f, p, 5*131072+7); err != nil {
		t.Fatal(err)
	}
	var w blockWalker
	must(t, im.walkFrom(&w, f, 5))
	defer w.c.close()
	for k := 5; k < 10; k++ {
		pos, word, err := w.next()
		must(t, err)
		if got, want := im.data.contains(blockKey{pos: pos, word: word}), k <= 8; got != want {
			t.Errorf("block %d cached or loading: %v, want %v", k, got, want)
		}
	}
}

// TestAllocs checks that lookups and reads of cached blocks allocate
// little.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	_, raw := sharedImage(t, "-comp", "gzip")
	im := openAt(t, raw, 0, Options{})
	big := lookupPath(t, im, "big")
	f := lookupPath(t, im, "files", "size-2109497")
	p := make([]byte, 131072)
	found, missing := "entry-2998-"+strings.Repeat("x", 2998%40), "entry-2998-"
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"Lookup", 1, func() { im.Lookup(big, found) }},
		{"Lookup missing", 3, func() { im.Lookup(big, missing) }},
		{"ReadAt", 0, func() { im.ReadAt(f, p, 3*131072) }},
		{"ReadAt unaligned", 0, func() { im.ReadAt(f, p, 3*131072+5) }},
		{"Inode", 1, func() { im.Inode(big.Ref) }},
	} {
		tc.fn()
		if n := testing.AllocsPerRun(100, tc.fn); n > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, n, tc.max)
		}
	}
}

func TestOptionDefaults(t *testing.T) {
	raw := smallImage(t)
	for _, tc := range []struct {
		o                 Options
		data, meta, ahead int
	}{
		{Options{}, 16, 256, 0},
		{Options{CacheBlocks: -1, MetaBlocks: -5, ReadAhead: -3}, 16, 256, 0},
		{Options{CacheBlocks: 3, MetaBlocks: 7, ReadAhead: 2}, 3, 7, 2},
	} {
		im := openAt(t, raw, 0, tc.o)
		if im.data.max != tc.data || im.meta.max != tc.meta || im.readAhead != tc.ahead {
			t.Errorf("%+v: %d data blocks, %d metadata blocks, read-ahead %d; want %d, %d, %d",
				tc.o, im.data.max, im.meta.max, im.readAhead, tc.data, tc.meta, tc.ahead)
		}
	}
}
