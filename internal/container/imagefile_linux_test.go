package container

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadRegular: regular files are read whole up to the bound; a named
// pipe (with no writer: opening it for reading would block), a directory
// or a sparse file over the bound are refused at once, saying why; a
// missing file is ErrNotExist.
func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := write("sparse", nil)
	if err := os.Truncate(sparse, 4<<30); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		max     int64
		want    []byte
		wantErr string // "" for success
	}{
		{"empty", write("empty", nil), 10, []byte{}, ""},
		{"small", write("small", []byte("root:x:0:0::/root:/bin/sh\n")), 100, []byte("root:x:0:0::/root:/bin/sh\n"), ""},
		{"at the bound", write("bound", bytes.Repeat([]byte("x"), 5000)), 5000, bytes.Repeat([]byte("x"), 5000), ""},
		{"over the bound", write("over", bytes.Repeat([]byte("x"), 5001)), 5000, nil, "larger than"},
		{"sparse", sparse, 16 << 20, nil, "4.0 GiB, larger than the 16.0 MiB"},
		{"named pipe", fifo, 100, nil, "not a regular file (a named pipe)"},
		{"directory", dir, 100, nil, "not a regular file (a directory)"},
		{"missing", filepath.Join(dir, "missing"), 100, nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type res struct {
				b   []byte
				err error
			}
			done := make(chan res, 1)
			go func() {
				b, err := readRegular(tc.path, tc.max)
				done <- res{b, err}
			}()
			var r res
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("readRegular(%s) blocks", tc.name)
			}
			if tc.wantErr == "" {
				if r.err != nil || !bytes.Equal(r.b, tc.want) {
					t.Errorf("got %d bytes, %v; want %d bytes", len(r.b), r.err, len(tc.want))
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one saying %q", r.err, tc.wantErr)
			}
			if strings.Contains(r.err.Error(), dir) {
				t.Errorf("error %q names the stage's path", r.err)
			}
		})
	}
	if _, err := readRegular(filepath.Join(dir, "missing"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if _, err := readRegular(fifo, 1); !errors.Is(err, errNotRegular) {
		t.Errorf("named pipe: %v, want errNotRegular", err)
	}
}

// TestExecutableRefusesNonRegular: lookPath takes only regular files with
// an execute bit, so that a named pipe of the image is never read ahead.
func TestExecutableRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, wantErr string }{
		{prog, ""},
		{fifo, "not an executable file (a named pipe)"},
		{dir, "not an executable file (a directory)"},
		{"/dev/null", "not an executable file (a character device)"},
	} {
		_, err := lookPath(tc.path, "")
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("lookPath(%s): %v, want %q", tc.path, err, tc.wantErr)
		}
	}
	if _, err := lookPath("fifo", dir); err == nil {
		t.Errorf("lookPath found the named pipe in PATH")
	}
}
