package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, c := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// squash packs dir into a bare SquashFS file, or skips without mksquashfs.
func squash(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skipf("mksquashfs not installed: %v", err)
	}
	out := filepath.Join(t.TempDir(), "img.sqfs")
	if b, err := exec.Command("mksquashfs", dir, out, "-noappend", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	return out
}

func TestReadMeta(t *testing.T) {
	full := map[string]string{
		"bin/x":                                "x",
		".singularity.d/labels.json":           `{"org.label-schema.name":"demo","maintainer":"me"}`,
		".singularity.d/runscript":             "#!/bin/sh\necho run\n",
		".singularity.d/env/90-environment.sh": "export A=1\n",
		".singularity.d/env/10-docker.sh":      "export B=2",
		".singularity.d/env/README":            "not a script",
		".singularity.d/Singularity":           "Bootstrap: scratch\n",
	}
	wantFull := Meta{
		Labels:    map[string]string{"org.label-schema.name": "demo", "maintainer": "me"},
		Runscript: "#!/bin/sh\necho run\n",
		Environment: "=== /.singularity.d/env/10-docker.sh ===\nexport B=2\n" +
			"=== /.singularity.d/env/90-environment.sh ===\nexport A=1\n",
		Deffile: "Bootstrap: scratch\n",
	}
	tests := []struct {
		name  string
		files map[string]string
		want  Meta
	}{
		{"full", full, wantFull},
		{"no metadata", map[string]string{"bin/x": "x"}, Meta{Labels: map[string]string{}}},
		{"empty labels", map[string]string{".singularity.d/labels.json": ""}, Meta{Labels: map[string]string{}}},
	}
	for _, tc := range tests {
		for _, kind := range []string{"dir", "squashfs"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				root := writeTree(t, tc.files)
				img := &Image{Path: root, Format: FormatDir}
				if kind == "squashfs" {
					img = &Image{Path: squash(t, root), Format: FormatSquashFS}
				}
				m, err := ReadMeta(context.Background(), img, "")
				if err != nil {
					t.Fatalf("ReadMeta: %v", err)
				}
				if len(m.Labels) != len(tc.want.Labels) {
					t.Errorf("labels %v, want %v", m.Labels, tc.want.Labels)
				}
				for k, v := range tc.want.Labels {
					if m.Labels[k] != v {
						t.Errorf("label %s = %q, want %q", k, m.Labels[k], v)
					}
				}
				if m.Runscript != tc.want.Runscript || m.Environment != tc.want.Environment || m.Deffile != tc.want.Deffile {
					t.Errorf("got runscript %q env %q deffile %q, want %q %q %q", m.Runscript, m.Environment,
						m.Deffile, tc.want.Runscript, tc.want.Environment, tc.want.Deffile)
				}
			})
		}
	}
}

func TestReadMetaBadLabels(t *testing.T) {
	root := writeTree(t, map[string]string{".singularity.d/labels.json": "{not json"})
	_, err := ReadMeta(context.Background(), &Image{Path: root, Format: FormatDir}, "")
	if err == nil || !strings.Contains(err.Error(), "labels.json") || !strings.Contains(err.Error(), root) {
		t.Errorf("ReadMeta with bad labels.json = %v, want an error naming the image and labels.json", err)
	}
}
