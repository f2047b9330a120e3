//go:build !(cgo && libdeflate)

package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zlib"
)

// zlibDecompressor inflates zlib streams with klauspost/compress, reusing
// readers through a pool.
type zlibDecompressor struct{ pool sync.Pool }

// zlibState is one pooled reader and its input.
type zlibState struct {
	src bytes.Reader
	zr  io.ReadCloser
}

func newZlib() decompressor { return &zlibDecompressor{} }

func (z *zlibDecompressor) decompress(dst, src []byte) (int, error) {
	st, _ := z.pool.Get().(*zlibState)
	if st == nil {
		st = &zlibState{}
	}
	defer z.pool.Put(st)
	st.src.Reset(src)
	if st.zr == nil {
		zr, err := zlib.NewReader(&st.src)
		if err != nil {
			return 0, err
		}
		st.zr = zr
	} else if err := st.zr.(zlib.Resetter).Reset(&st.src, nil); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(st.zr, dst)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return n, nil
	case err != nil:
		return 0, err
	}
	// dst is full: the stream must end here (and its checksum match).
	var one [1]byte
	m, err := st.zr.Read(one[:])
	for m == 0 && err == nil {
		m, err = st.zr.Read(one[:])
	}
	if m > 0 {
		return 0, fmt.Errorf("zlib output does not fit in %d bytes", len(dst))
	}
	if !errors.Is(err, io.EOF) {
		return 0, err
	}
	return n, nil
}
