package squashfs

import (
	"errors"
	"io/fs"
	"runtime"
	"testing"
	"time"
)

// FuzzOpen opens and walks arbitrary images: whatever the bytes, the
// package must not panic, loop or allocate without bound, and its errors
// must say the image is corrupt or unsupported. Inputs that find new
// code are big, so run it with -fuzzminimizetime 200x or so, or the
// fuzzer spends its time minimizing them.
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
		// A walk that does not end fails with the stacks, which the
		// fuzzer's own hang report lacks.
		done := make(chan error, 1)
		go func() { done <- walkAll(data, int64(len(data))) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			buf := make([]byte, 1<<20)
			panic("the walk did not end:\n" + string(buf[:runtime.Stack(buf, true)]))
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error wraps neither ErrCorrupt nor ErrUnsupported: %v", err)
		}
	})
}
