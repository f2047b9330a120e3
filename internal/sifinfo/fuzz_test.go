package sifinfo

import (
	"encoding/binary"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// FuzzOpen opens arbitrary files as SIF files (seeded with a valid one and
// one whose descriptor table is at offset -1, size -1, which made sif/v2
// slice out of range) and writes the header, the list and every
// descriptor's details: errors must be one line naming the file.
func FuzzOpen(f *testing.F) {
	good, err := os.ReadFile(makeSIF(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	slice := append([]byte(nil), good[:128]...)
	binary.LittleEndian.PutUint64(slice[96:], ^uint64(0))
	binary.LittleEndian.PutUint64(slice[104:], ^uint64(0))
	f.Add(slice)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		tmp, err := os.CreateTemp(dir, "*.sif")
		if err != nil {
			t.Fatal(err)
		}
		p := tmp.Name()
		defer os.Remove(p)
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		sf, err := Open(p)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, p) {
				t.Fatalf("error %q is not one line naming the file", msg)
			}
			return
		}
		defer sf.Close()
		if err := WriteHeader(io.Discard, sf.FileImage); err != nil {
			t.Fatal(err)
		}
		if err := WriteList(io.Discard, sf.FileImage); err != nil {
			t.Fatal(err)
		}
		sf.WithDescriptors(func(d sif.Descriptor) bool {
			_ = WriteInfo(io.Discard, sf.FileImage, d.ID())
			return false
		})
	})
}
