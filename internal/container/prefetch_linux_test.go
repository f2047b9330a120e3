package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestElfDeps(t *testing.T) {
	tr, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true on PATH")
	}
	tr, _ = filepath.EvalSymlinks(tr)
	interp, needed, _ := elfDeps(tr)
	if interp == "" || !slices.ContainsFunc(needed, func(n string) bool { return strings.HasPrefix(n, "libc.") }) {
		t.Skipf("%s is not a dynamically linked glibc program (interp %q, needed %v)", tr, interp, needed)
	}
	if _, err := os.Stat(interp); err != nil {
		t.Errorf("interpreter %s: %v", interp, err)
	}
	if lib := findLib("libc.so.6", libDirs()); lib == "" {
		t.Errorf("libc.so.6 not found in %v", libDirs())
	}

	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if i, n, s := elfDeps(notELF); i != "" || n != nil || s != nil {
		t.Errorf("a script: %q %v %v, want nothing", i, n, s)
	}
}

func TestPrefetchHelpers(t *testing.T) {
	if got := splitPath("/a::rel:/b/c:"); !slices.Equal(got, []string{"/a", "/b/c"}) {
		t.Errorf("splitPath = %v", got)
	}
	env := []string{"LD_LIBRARY_PATH=/old", "X=1", "LD_LIBRARY_PATH=/new"}
	if got := envValue(env, "LD_LIBRARY_PATH"); got != "/new" {
		t.Errorf("envValue = %q, want the last one", got)
	}
	if got := envValue(env, "LD"); got != "" {
		t.Errorf("envValue of a prefix = %q", got)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "libx.so.1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"libx.so.1", filepath.Join(dir, "libx.so.1")},
		{"libnone.so", ""},
		{"/abs/libz.so", "/abs/libz.so"},
	}
	for _, tt := range tests {
		if got := findLib(tt.name, []string{"/nonexistent", dir}); got != tt.want {
			t.Errorf("findLib(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
