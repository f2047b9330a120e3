package sqfsfuse

import (
	"testing"

	"github.com/launch-hpc/launch/internal/squashfs"
)

func TestNodeIDs(t *testing.T) {
	for _, tc := range []struct {
		ref  squashfs.Ref
		want uint64
	}{
		{0, 2},
		{0x1234_0040, 0x1234_0042},
		{1<<48 - 1, 1<<48 + 1},
	} {
		got := nodeID(tc.ref)
		if got != tc.want {
			t.Errorf("nodeID(%#x) = %#x, want %#x", tc.ref, got, tc.want)
		}
		if refOf(got) != tc.ref {
			t.Errorf("refOf(%#x) = %#x, want %#x", got, refOf(got), tc.ref)
		}
	}
}

func TestListings(t *testing.T) {
	var l listings
	entries := func(n uint64) []squashfs.DirEntry { return []squashfs.DirEntry{{Name: "e", Number: uint32(n)}} }
	for id := uint64(10); id < 15; id++ {
		l.put(id, entries(id))
	}
	if _, ok := l.get(10); ok {
		t.Error("the oldest of five listings is still kept; four are")
	}
	for id := uint64(11); id < 15; id++ {
		e, ok := l.get(id)
		if !ok || e[0].Number != uint32(id) {
			t.Errorf("listing %d: %v %v", id, e, ok)
		}
	}
	if _, ok := l.get(99); ok {
		t.Error("a listing never kept was found")
	}
}
