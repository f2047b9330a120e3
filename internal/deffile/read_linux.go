package deffile

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/filekind"
)

// ReadFile reads a definition or build-arg file the user named: it must be a
// regular file (opened non-blocking, so a FIFO or device named by mistake
// does not hang the build), at most MaxSize bytes, and text. Errors name the
// file and say what was wrong, in one line.
func ReadFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot open: %v", unwrapPath(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot stat: %v", unwrapPath(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: fmt.Sprintf("is not a regular file (%s)", filekind.Name(fi.Mode()))}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("reading: %v", unwrapPath(err))}
	}
	if err := checkText(path, data); err != nil {
		return nil, err
	}
	return data, nil
}

// unwrapPath drops the *os.PathError wrapper (its path is already in the
// message) so the error reads "FILE: cannot open: no such file or directory".
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
