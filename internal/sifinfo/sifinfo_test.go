package sifinfo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// makeSIF writes a deterministic SIF with a deffile and a partition.
func makeSIF(t testing.TB) string {
	t.Helper()
	def, err := sif.NewDescriptorInput(sif.DataDeffile, strings.NewReader("Bootstrap: scratch\n"))
	if err != nil {
		t.Fatal(err)
	}
	part, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(append([]byte("hsqs"), make([]byte, 5000)...)),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.sif")
	f, err := sif.CreateContainerAtPath(p, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptors(def, part))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.UnloadContainer(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := makeSIF(t)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.sif"), "does not exist"},
		{"directory", dir, "is a directory"},
		{"text", write("text.sif", []byte("just some text, long enough to have a header area\n")), "not a SIF file"},
		{"empty", write("empty.sif", nil), "not a SIF file"},
		{"truncated data", write("trunc.sif", data[:len(data)-100]), "truncated"},
		{"truncated descriptors", write("trunc2.sif", data[:5000]), "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Open(tc.path)
			if err == nil {
				f.Close()
				t.Fatalf("Open(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open(%s) = %v, want an error naming the file and saying %q", tc.path, err, tc.want)
			}
		})
	}
}

func TestListAndInfo(t *testing.T) {
	f, err := Open(makeSIF(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var list bytes.Buffer
	if err := WriteList(&list, f.FileImage); err != nil {
		t.Fatal(err)
	}
	want := "ID  GROUP  LINK  SIF POSITION (start-end)  TYPE\n" +
		"1   1      NONE  32176-32195               Def.FILE\n" +
		"2   1      NONE  32768-37772               FS (Squashfs/*System/amd64)\n"
	if list.String() != want {
		t.Errorf("list:\n%s\nwant:\n%s", list.String(), want)
	}
	var info bytes.Buffer
	if err := WriteInfo(&info, f.FileImage, 2); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Data Type:       FS", "Offset:          32768", "Architecture:    amd64", "Partition Type:  *System"} {
		if !strings.Contains(info.String(), s) {
			t.Errorf("info lacks %q:\n%s", s, info.String())
		}
	}
	if err := WriteInfo(&info, f.FileImage, 9); err == nil || !strings.Contains(err.Error(), "descriptor 9") {
		t.Errorf("info on a missing descriptor = %v", err)
	}
}
