// Package capwriter keeps a bounded part of what a child program writes:
// the one writer type for the outputs and error streams launch reads of
// the programs it runs (ldconfig, unsquashfs, its helpers).
package capwriter

import (
	"bytes"
	"errors"
)

// errTooLong is the error of a write past Max when Fail is set.
var errTooLong = errors.New("output too long")

// Buffer collects up to Max bytes of what is written to it. A write that
// would go past Max sets Over and then, with Fail, fails whole (the writing
// program gets EPIPE and stops), or else keeps what fits and drops the rest,
// reporting success (the program runs on; its tail is not kept).
type Buffer struct {
	bytes.Buffer
	// Max is the most that is kept.
	Max int
	// Fail makes a write past Max fail instead of being clipped.
	Fail bool
	// Over says that more than Max bytes came.
	Over bool
}

// Write keeps p, or what of it fits.
func (b *Buffer) Write(p []byte) (int, error) {
	room := b.Max - b.Len()
	if len(p) <= room {
		return b.Buffer.Write(p)
	}
	b.Over = true
	if b.Fail {
		return 0, errTooLong
	}
	if room > 0 {
		b.Buffer.Write(p[:room])
	}
	return len(p), nil
}
