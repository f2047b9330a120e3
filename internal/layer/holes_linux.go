package layer

import (
	"bytes"
	"os"
)

// holeBlock is the unit in which runs of zeros become holes: a page, the
// file system's usual block.
const holeBlock = 4096

// zeroBlock is holeBlock zero bytes, never written to.
var zeroBlock = make([]byte, holeBlock)

// holeWriter writes a file's content, leaving every block-aligned block of
// zeros as a hole instead of writing it: a sparse file of a layer (GNU or
// PAX sparse, which archive/tar expands into zeros as it reads) stays sparse
// on disk, as do the runs of zeros of any other file. Writes are gathered
// in buf (a multiple of holeBlock, reused from file to file) so that short
// reads of the tar stream do not hide whole blocks; finish writes the rest
// and sets the file's size, which a trailing hole does not.
type holeWriter struct {
	f   *os.File
	buf []byte
	n   int   // bytes in buf
	off int64 // file offset of buf[0], a multiple of holeBlock
	end int64 // the file's size: the end of the last data written
}

func (w *holeWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		c := copy(w.buf[w.n:], p)
		w.n += c
		p = p[c:]
		if w.n == len(w.buf) {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

// flush writes the data blocks of buf (each run of them in one write) and
// skips its zero blocks.
func (w *holeWriter) flush() error {
	b := w.buf[:w.n]
	start := -1 // start of the run of data blocks not yet written
	for i := 0; i < len(b); i += holeBlock {
		end := min(i+holeBlock, len(b))
		zero := bytes.Equal(b[i:end], zeroBlock[:end-i])
		switch {
		case zero && start >= 0:
			if _, err := w.f.WriteAt(b[start:i], w.off+int64(start)); err != nil {
				return err
			}
			start = -1
		case !zero && start < 0:
			start = i
		}
	}
	if start >= 0 {
		if _, err := w.f.WriteAt(b[start:], w.off+int64(start)); err != nil {
			return err
		}
		w.end = w.off + int64(len(b))
	}
	w.off += int64(w.n)
	w.n = 0
	return nil
}

// finish writes what is left and gives the file its full size when it
// ends in a hole.
func (w *holeWriter) finish() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.end == w.off {
		return nil
	}
	return w.f.Truncate(w.off)
}
