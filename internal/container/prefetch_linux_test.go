package container

import (
	"bytes"
	"debug/elf"
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
	d := fileDeps(t, tr)
	interp, needed := d.interp, d.needed
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
	if d := fileDeps(t, notELF); d.interp != "" || d.needed != nil || d.search != nil {
		t.Errorf("a script: %+v, want nothing", d)
	}
}

func TestPrefetchHelpers(t *testing.T) {
	if got := splitPath("/a::rel:/b/c:"); !slices.Equal(got, []string{"/a", "/b/c"}) {
		t.Errorf("splitPath = %v", got)
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

// TestElfDepsAgainstDebugElf: what elfDeps reads from the program headers
// agrees with debug/elf (which reads the section headers) on host programs.
func TestElfDepsAgainstDebugElf(t *testing.T) {
	for _, name := range []string{"true", "ls", "sh", "busybox"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		p, _ = filepath.EvalSymlinks(p)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		var wantInterp string
		for _, pr := range f.Progs {
			if pr.Type == elf.PT_INTERP {
				b := make([]byte, pr.Filesz)
				_, _ = pr.ReadAt(b, 0)
				wantInterp = strings.TrimRight(string(b), "\x00")
			}
		}
		wantNeeded, _ := f.DynString(elf.DT_NEEDED)
		f.Close()
		d := fileDeps(t, p)
		if d.interp != wantInterp || !slices.Equal(d.needed, wantNeeded) {
			t.Errorf("elfDeps(%s) = %q, %q; debug/elf says %q, %q", p, d.interp, d.needed, wantInterp, wantNeeded)
		}
	}
}

// TestElfDepsRunpath: $ORIGIN in DT_RUNPATH and DT_RPATH is expanded to
// the program's directory; relative entries are dropped.
func TestElfDepsRunpath(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "p.c")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, flag string }{
		{"runpath", "-Wl,--enable-new-dtags"},
		{"rpath", "-Wl,--disable-new-dtags"},
	} {
		out := filepath.Join(dir, tc.name)
		cmd := exec.Command(cc, "-o", out, src, tc.flag, "-Wl,-rpath,$ORIGIN/../lib:/opt/site/lib:rel/lib:${ORIGIN}")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cc: %v: %s", err, b)
		}
		d := fileDeps(t, out)
		needed, search := d.needed, d.search
		want := []string{dir + "/../lib", "/opt/site/lib", dir}
		if !slices.Equal(search, want) || !slices.ContainsFunc(needed, func(n string) bool { return strings.HasPrefix(n, "libc.") }) {
			t.Errorf("%s: search %q, needed %q; want search %q and libc needed", tc.name, search, needed, want)
		}
	}
}

// fileDeps is elfDeps of the file at p.
func fileDeps(t *testing.T, p string) elfInfo {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return elfDeps(f, p)
}

// FuzzElfDeps: any file content gives an answer, within the bounds, and no
// panic.
func FuzzElfDeps(f *testing.F) {
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b[:min(len(b), 16<<10)])
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add(append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 120)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := elfDeps(bytes.NewReader(data), "/x/prog")
		if len(d.interp) > 4096 || len(d.needed)+len(d.search) > 1<<20 {
			t.Errorf("unbounded answer: %d bytes of interpreter, %d entries", len(d.interp), len(d.needed)+len(d.search))
		}
	})
}
