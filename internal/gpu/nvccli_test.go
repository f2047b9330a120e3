package gpu

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestLibsOfPaths: listed files are named by every cache name that
// resolves to them, in the cache's order, a file without one by its own
// name, and files that are not native ELF libraries are left out.
func TestLibsOfPaths(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable() // a native 64-bit ELF file
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	cuda := filepath.Join(dir, "libcuda.so.535.1")
	other := filepath.Join(dir, "libnvidia-ml.so.535.1")
	text := filepath.Join(dir, "libtext.so.1")
	for p, b := range map[string][]byte{cuda: elf, other: elf, text: []byte("not ELF")} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"libcuda.so.1": "libcuda.so.535.1", "libcuda.so": "libcuda.so.1", "libtext.so": "libtext.so.1"} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	cache := []CacheEntry{
		{"libcuda.so.1", filepath.Join(dir, "libcuda.so.1")},
		{"libgone.so.1", filepath.Join(dir, "missing")},
		{"libcuda.so", filepath.Join(dir, "libcuda.so")},
		{"libtext.so", filepath.Join(dir, "libtext.so")},
	}
	got := libsOfPaths([]string{cuda, text, other}, cache)
	want := []Lib{
		{Name: "libcuda.so.1", Path: cuda},
		{Name: "libcuda.so", Path: cuda},
		{Name: "libnvidia-ml.so.535.1", Path: other},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("libsOfPaths = %+v\nwant %+v", got, want)
	}
}
