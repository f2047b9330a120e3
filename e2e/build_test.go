package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withMeta adds Apptainer metadata to tree and returns tree.
func withMeta(t *testing.T, tree string) string {
	t.Helper()
	files := map[string]string{
		".singularity.d/runscript":             "#!/bin/sh\necho hello from runscript\n",
		".singularity.d/labels.json":           `{"maintainer":"hpc team","version":"1.2"}`,
		".singularity.d/env/90-environment.sh": "export GREETING=hello\n",
		".singularity.d/Singularity":           "Bootstrap: scratch\n%labels\n    maintainer hpc team\n",
	}
	for name, c := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// entries lists the names in dir, so a test can see what a command left.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// wantEntries fails unless dir holds exactly want.
func wantEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	got := entries(t, dir)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v (temporary files left behind?)", dir, got, want)
	}
}

func TestBuildSIF(t *testing.T) {
	tree := withMeta(t, busyboxTree(t))
	dir := t.TempDir()
	out := filepath.Join(dir, "app.sif")
	r := launch(t, "build", out, tree)
	wantOK(t, r)
	if lines := strings.Count(r.Stderr, "\n"); lines > 3 || strings.Contains(r.Stderr, "Parallel mksquashfs") {
		t.Errorf("default build output should be a few short lines without mksquashfs chatter, got %q", r.Stderr)
	}
	wantEntries(t, dir, "app.sif")

	r = launch(t, "sif", "list", out)
	wantOK(t, r)
	for _, want := range []string{"Def.FILE", "FS (Squashfs/*System/" + runtime.GOARCH + ")", "SIF POSITION"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("sif list lacks %q:\n%s", want, r.Stdout)
		}
	}
	// The partition is plain SquashFS holding the tree and its metadata.
	r = launch(t, "inspect", "--runscript", out)
	wantOK(t, r)
	if r.Stdout != "#!/bin/sh\necho hello from runscript\n" {
		t.Errorf("runscript read back = %q", r.Stdout)
	}
}

func TestBuildQuietVerbose(t *testing.T) {
	tree := busyboxTree(t)
	dir := t.TempDir()
	r := launch(t, "build", "-q", filepath.Join(dir, "q.sif"), tree)
	wantOK(t, r)
	if r.Stderr != "" {
		t.Errorf("build -q printed %q", r.Stderr)
	}
	r = launch(t, "build", "-v", filepath.Join(dir, "v.sif"), tree)
	wantOK(t, r)
	if !strings.Contains(r.Stderr, "Parallel mksquashfs") {
		t.Errorf("build -v should show mksquashfs output, got %q", r.Stderr)
	}
}

func TestBuildForce(t *testing.T) {
	tree := busyboxTree(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "app.sif")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantOK(t, launch(t, "build", "-q", "--force", out, tree))
	wantOK(t, launch(t, "sif", "header", out))
	wantEntries(t, dir, "app.sif")
}

func TestBuildBadInput(t *testing.T) {
	tree := busyboxTree(t)
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		rootSkip string                                  // skip as root, with this reason
		setup    func(t *testing.T, dir string) []string // returns args after "build"
		want     []string
		keep     []string // entries dir should hold afterwards
	}{
		{name: "missing dir", setup: func(t *testing.T, dir string) []string {
			return []string{filepath.Join(dir, "out.sif"), filepath.Join(dir, "nope")}
		}, want: []string{"nope", "does not exist"}},
		{name: "unknown compression", setup: func(t *testing.T, dir string) []string {
			return []string{"--compression", "bzip9", filepath.Join(dir, "out.sif"), tree}
		}, want: []string{"--compression", "bzip9", "zstd"}},
		{name: "dir is a file", setup: func(t *testing.T, dir string) []string {
			return []string{filepath.Join(dir, "out.sif"), text}
		}, want: []string{text, "not a directory"}},
		{name: "out exists", setup: func(t *testing.T, dir string) []string {
			if err := os.WriteFile(filepath.Join(dir, "out.sif"), []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{filepath.Join(dir, "out.sif"), tree}
		}, want: []string{"out.sif", "already exists", "--force"}, keep: []string{"out.sif"}},
		{name: "out dir not writable", rootSkip: "root can write into a read-only directory",
			setup: func(t *testing.T, dir string) []string {
				ro := filepath.Join(dir, "ro")
				if err := os.Mkdir(ro, 0o555); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(ro, "out.sif"), tree}
			}, want: []string{"out.sif", "permission denied"}, keep: []string{"ro"}},
		{name: "unreadable file", rootSkip: "root can read every file",
			setup: func(t *testing.T, dir string) []string {
				src := filepath.Join(dir, "src")
				if err := os.MkdirAll(filepath.Join(src, "data"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(src, "data", "secret"), []byte("x"), 0o000); err != nil {
					t.Fatal(err)
				}
				return []string{filepath.Join(dir, "out.sif"), src}
			}, want: []string{"secret", "cannot read"}, keep: []string{"src"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootSkip != "" && isRoot() {
				t.Skip(tc.rootSkip)
			}
			dir := t.TempDir()
			args := tc.setup(t, dir)
			wantFatal(t, launch(t, append([]string{"build"}, args...)...), tc.want...)
			wantEntries(t, dir, tc.keep...)
			if ro := filepath.Join(dir, "ro"); slices.Contains(tc.keep, "ro") {
				wantEntries(t, ro)
			}
		})
	}
	t.Run("out exists untouched", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.sif")
		if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		launch(t, "build", out, tree)
		if b, _ := os.ReadFile(out); string(b) != "keep me" {
			t.Errorf("existing OUT was changed to %q", b)
		}
	})
}

// TestBuildDiskFull runs the build under a file size limit, once so small
// that mksquashfs fails and once so that only the SIF write fails.
func TestBuildDiskFull(t *testing.T) {
	tree := busyboxTree(t)
	sq := filepath.Join(t.TempDir(), "probe.sqfs")
	args := []string{tree, sq, "-noappend", "-quiet", "-no-progress"}
	if !isRoot() {
		args = append(args, "-all-root")
	}
	if b, err := exec.Command("mksquashfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	fi, err := os.Stat(sq)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		blocks int64 // ulimit -f, in 512-byte blocks (POSIX sh)
	}{
		{"mksquashfs fails", 8},
		{"SIF write fails", (fi.Size() + 8192) / 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.sif")
			cmd := exec.Command("sh", "-c", `ulimit -f "$1" && exec "$2" build -q "$3" "$4"`, "sh",
				strconv.FormatInt(tc.blocks, 10), launchBin(t), out, tree)
			r := runProcess(t, cmd, 0)
			wantFatal(t, r, "writing "+out, "file too large / disk full")
			wantEntries(t, dir)
		})
	}
}

// TestBuildSignal interrupts a build of a large tree and checks that it
// exits non-zero and leaves nothing in OUT's directory.
func TestBuildSignal(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	rnd, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer rnd.Close()
	buf := make([]byte, 16<<20)
	for i := 0; i < 12; i++ { // 192 MiB of incompressible data
		if _, err := rnd.Read(buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "blob"+strconv.Itoa(i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(launchBin(t), "build", "-q", filepath.Join(dir, "out.sif"), src)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			_ = cmd.Process.Signal(sig)
			err := cmd.Wait()
			if err == nil {
				t.Skip("build finished before the signal arrived; the machine is too fast for this tree")
			}
			if !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("stderr %q should say the build was interrupted", errb.String())
			}
			wantEntries(t, dir)
		})
	}
}

func TestBuildSandbox(t *testing.T) {
	tree := withMeta(t, busyboxTree(t))
	img := buildSIF(t, tree)
	dir := t.TempDir()
	sb := filepath.Join(dir, "sandbox")
	wantOK(t, launch(t, "build", "-q", "--sandbox", sb, img))
	wantEntries(t, dir, "sandbox")
	want, _ := os.ReadFile(filepath.Join(tree, "bin", "busybox"))
	got, err := os.ReadFile(filepath.Join(sb, "bin", "busybox"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("bin/busybox not unpacked intact (%v)", err)
	}
	if l, err := os.Readlink(filepath.Join(sb, "bin", "sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh symlink = %q, %v", l, err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(sb, "bin", "busybox"), &st); err != nil {
		t.Fatal(err)
	}
	if !isRoot() && int(st.Uid) != os.Geteuid() {
		t.Errorf("unpacked file owned by %d, want the calling user %d", st.Uid, os.Geteuid())
	}
	r := launch(t, "inspect", "-l", sb)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "maintainer: hpc team") {
		t.Errorf("inspect of the sandbox = %q", r.Stdout)
	}
	// OUTDIR exists: refused, then replaced with --force.
	wantFatal(t, launch(t, "build", "--sandbox", sb, img), sb, "already exists", "--force")
	wantOK(t, launch(t, "build", "-q", "--sandbox", "--force", sb, img))
	wantEntries(t, dir, "sandbox")
}

func TestBuildSandboxBadInput(t *testing.T) {
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, image string
		want        []string
	}{
		{"missing image", "/nonexistent/app.sif", []string{"/nonexistent/app.sif", "does not exist"}},
		{"text file", text, []string{text, "not a SIF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wantFatal(t, launch(t, "build", "--sandbox", filepath.Join(dir, "sb"), tc.image), tc.want...)
			wantEntries(t, dir)
		})
	}
}
