//go:build cgo && libdeflate

package squashfs

/*
#cgo LDFLAGS: -ldeflate
#include <libdeflate.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// zlibDecompressor inflates zlib streams with libdeflate, one C
// decompressor per concurrent use, pooled.
type zlibDecompressor struct{ pool sync.Pool }

// deflater owns one libdeflate decompressor, freed when the pool drops it.
type deflater struct {
	d *C.struct_libdeflate_decompressor
}

func newZlib() decompressor { return &zlibDecompressor{} }

func (z *zlibDecompressor) decompress(dst, src []byte) (int, error) {
	if len(src) == 0 || len(dst) == 0 {
		return 0, errors.New("empty zlib block")
	}
	w, _ := z.pool.Get().(*deflater)
	if w == nil {
		d := C.libdeflate_alloc_decompressor()
		if d == nil {
			return 0, errors.New("allocating a libdeflate decompressor failed")
		}
		w = &deflater{d: d}
		runtime.AddCleanup(w, func(d *C.struct_libdeflate_decompressor) {
			C.libdeflate_free_decompressor(d)
		}, d)
	}
	var got C.size_t
	r := C.libdeflate_zlib_decompress(w.d,
		unsafe.Pointer(&src[0]), C.size_t(len(src)),
		unsafe.Pointer(&dst[0]), C.size_t(len(dst)), &got)
	z.pool.Put(w)
	switch r {
	case C.LIBDEFLATE_SUCCESS:
		return int(got), nil
	case C.LIBDEFLATE_INSUFFICIENT_SPACE:
		return 0, fmt.Errorf("zlib output does not fit in %d bytes", len(dst))
	}
	return 0, fmt.Errorf("bad zlib data (libdeflate result %d)", int(r))
}
