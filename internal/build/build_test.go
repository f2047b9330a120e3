package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/launch-hpc/launch/internal/image"
	"github.com/launch-hpc/launch/internal/msg"
)

func TestCheckSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src, want string
	}{
		{"ok", dir, ""},
		{"missing", filepath.Join(dir, "nope"), "does not exist"},
		{"file", file, "is not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSource(tc.src, true)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkSource(%s) = %v, want nil", tc.src, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkSource(%s) = %v, want an error with %q", tc.src, err, tc.want)
			}
		})
	}
}

func TestCheckSourceUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read every file; unreadable files can only be shown as non-root")
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "sub", "secret")
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	err := checkSource(dir, true)
	if err == nil || !strings.Contains(err.Error(), secret) {
		t.Errorf("checkSource = %v, want an error naming %s", err, secret)
	}
}

func TestMksquashfsArgs(t *testing.T) {
	tests := []struct {
		name string
		euid int
		comp string
		want []string
	}{
		{"root keeps owners", 0, "", []string{"s", "d", "-noappend", "-no-progress"}},
		{"user build is all root, no set-uid", 1000, "", []string{"s", "d", "-noappend", "-no-progress", "-all-root", "-action", "chmod(ug-s)@true"}},
		{"compression", 1000, "zstd", []string{"s", "d", "-noappend", "-no-progress", "-comp", "zstd", "-all-root", "-action", "chmod(ug-s)@true"}},
	}
	for _, tt := range tests {
		if got := mksquashfsArgs("s", "d", tt.euid, tt.comp, nil); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsFull(t *testing.T) {
	tests := []struct {
		name string
		err  error
		out  string
		want bool
	}{
		{"efbig", &os.PathError{Op: "write", Path: "x", Err: syscall.EFBIG}, "", true},
		{"enospc", syscall.ENOSPC, "", true},
		{"tool says so", errors.New("exit status 1"), "Write failed because No space left on device", true},
		{"other", errors.New("exit status 1"), "some other failure", false},
	}
	for _, tc := range tests {
		if got := isFull(tc.err, tc.out); got != tc.want {
			t.Errorf("%s: isFull = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTempFileCommit(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "out")
	write := func(content string) *tempFile {
		tf, err := newTempFile(dir, "out", 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tf.f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		return tf
	}
	tf := write("one")
	if err := tf.commit(dst, false); err != nil {
		t.Fatalf("commit: %v", err)
	}
	tf = write("two")
	if err := tf.commit(dst, false); !errors.Is(err, errExists) {
		t.Errorf("commit over an existing file without replace = %v, want errExists", err)
	}
	tf.discard()
	tf = write("three")
	if err := tf.commit(dst, true); err != nil {
		t.Fatalf("commit with replace: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "three" {
		t.Errorf("content %q, want three", b)
	}
	tf = write("discarded")
	tf.discard()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only out: %v", len(ents), ents)
	}
}

// tree makes a small image tree with Apptainer metadata.
func tree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	files := map[string]string{
		"bin/hello":                                   "hello\n",
		".singularity.d/labels.json":                  `{"maintainer":"me"}`,
		".singularity.d/runscript":                    "#!/bin/sh\nexec hello\n",
		".singularity.d/env/90-environment.sh":        "export A=1\n",
		".singularity.d/Singularity":                  "Bootstrap: scratch\n",
		".singularity.d/env/10-docker2singularity.sh": "export B=2\n",
	}
	for name, c := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestBuildAndSandbox(t *testing.T) {
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	src := tree(t)
	out := filepath.Join(t.TempDir(), "img.sif")
	log := msg.New(&strings.Builder{}, msg.Quiet)
	ctx := context.Background()
	if err := Build(ctx, Options{Source: src, Out: out, Log: log}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	img, err := image.Open(out)
	if err != nil || img.Format != image.FormatSIF {
		t.Fatalf("image.Open(%s) = %+v, %v; want a SIF", out, img, err)
	}
	m, err := image.ReadMeta(ctx, img, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Labels["maintainer"] != "me" || m.Deffile != "Bootstrap: scratch\n" {
		t.Errorf("metadata read back = %+v", m)
	}
	if err := Build(ctx, Options{Source: src, Out: out, Log: log}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second build without force = %v, want an error suggesting --force", err)
	}
	sb := filepath.Join(t.TempDir(), "sandbox")
	if err := Sandbox(ctx, Options{Source: out, Out: sb, Log: log}); err != nil {
		t.Fatalf("Sandbox: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(sb, "bin/hello")); err != nil || string(b) != "hello\n" {
		t.Errorf("unpacked bin/hello = %q, %v", b, err)
	}
	if err := Sandbox(ctx, Options{Source: out, Out: sb, Log: log}); err == nil {
		t.Error("unpacking over an existing directory without force succeeded")
	}
	if err := Sandbox(ctx, Options{Source: out, Out: sb, Force: true, Log: log}); err != nil {
		t.Errorf("unpacking with force: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(sb))
	if len(ents) != 1 {
		t.Errorf("temporary entries left next to the sandbox: %v", ents)
	}
}

func TestBuildCancelled(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skipf("mksquashfs not installed: %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Build(ctx, Options{Source: tree(t), Out: filepath.Join(dir, "x.sif"), Log: msg.New(&strings.Builder{}, msg.Quiet)})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled build = %v, want interrupted", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("cancelled build left %v", ents)
	}
}
