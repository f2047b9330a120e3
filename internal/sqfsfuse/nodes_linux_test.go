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
