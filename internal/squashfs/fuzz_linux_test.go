package squashfs

import (
	"errors"
	"io/fs"
	"testing"
)

// FuzzOpen opens and walks arbitrary images: whatever the bytes, the
// package must not panic, loop or allocate without bound, and its errors
// must say the image is corrupt or unsupported.
func FuzzOpen(f *testing.F) {
	needMksquashfs(f)
	for _, args := range [][]string{
		{"-noI", "-noD", "-noF", "-noX", "-noId"},
		{"-noI", "-noD", "-noF", "-noX", "-noId", "-always-use-fragments", "-no-exports"},
		{"-noI", "-noF", "-noX", "-noId", "-no-fragments"},
		{"-comp", "gzip"},
		{"-comp", "lz4"},
		{"-comp", "zstd", "-no-xattrs"},
	} {
		f.Add(smallImage(f, args...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := walkAll(data, int64(len(data)))
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error wraps neither ErrCorrupt nor ErrUnsupported: %v", err)
		}
	})
}
