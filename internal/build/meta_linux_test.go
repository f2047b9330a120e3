package build

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/launch-hpc/launch/internal/layout"
)

func TestPlanMeta(t *testing.T) {
	now := time.Date(2024, 3, 5, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name      string
		files     map[string]string
		header    []HeaderField
		wantDef   string
		wantExcl  []string
		wantLabel map[string]string
		wantAdded []string // paths a pseudo definition adds
		notAdded  []string
	}{
		{
			name:    "bare tree",
			files:   map[string]string{"bin/sh": "x"},
			wantDef: "bootstrap: localimage\nfrom: SRC\n\n",
			wantLabel: map[string]string{"org.label-schema.schema-version": "1.0",
				"org.label-schema.build-date":                          "Tuesday_5_March_2024_7:8:9_UTC",
				"org.label-schema.usage.singularity.deffile.bootstrap": "localimage",
				"org.label-schema.build-arch":                          "amd64"},
			wantAdded: []string{layout.ActionRun, layout.BaseEnv, layout.BaseEnvLast, layout.Runscript, layout.Labels, layout.Deffile, "/singularity"},
		},
		{
			name: "tree with metadata",
			files: map[string]string{layout.Labels[1:]: `{"maintainer":"me"}`, layout.Runscript[1:]: "#!/bin/sh\necho hi\n",
				layout.Deffile[1:]: "Bootstrap: scratch\n"},
			header:    []HeaderField{{"bootstrap", "docker"}, {"from", "alpine"}},
			wantDef:   "Bootstrap: scratch\n",
			wantExcl:  []string{layout.Labels[1:]},
			wantLabel: map[string]string{"maintainer": "me", "org.label-schema.usage.singularity.deffile.from": "alpine"},
			wantAdded: []string{layout.ActionExec, layout.Labels},
			notAdded:  []string{layout.Runscript, layout.Deffile},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LAUNCH_TMPDIR", t.TempDir())
			src := t.TempDir()
			for p, d := range tt.files {
				os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
				if err := os.WriteFile(filepath.Join(src, p), []byte(d), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := planMeta(Options{Source: src, Origin: "SRC", Header: tt.header, Now: now, Arch: "amd64"})
			if err != nil {
				t.Fatal(err)
			}
			defer p.remove()
			if string(p.deffile) != tt.wantDef {
				t.Errorf("deffile = %q, want %q", p.deffile, tt.wantDef)
			}
			if strings.Join(p.exclude, ",") != strings.Join(tt.wantExcl, ",") {
				t.Errorf("exclude = %q, want %q", p.exclude, tt.wantExcl)
			}
			pf, err := os.ReadFile(p.pseudo)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.wantAdded {
				if !strings.Contains(string(pf), a+" ") {
					t.Errorf("pseudo definitions lack %s:\n%s", a, pf)
				}
			}
			for _, a := range tt.notAdded {
				if strings.Contains(string(pf), "\n"+a+" ") || strings.HasPrefix(string(pf), a+" ") {
					t.Errorf("pseudo definitions replace %s the tree has:\n%s", a, pf)
				}
			}
			var md struct {
				Data struct {
					Attributes struct {
						Labels    map[string]string `json:"labels"`
						Runscript string            `json:"runscript"`
						Deffile   string            `json:"deffile"`
					} `json:"attributes"`
				} `json:"data"`
				Type string `json:"type"`
			}
			if err := json.Unmarshal(p.metadata, &md); err != nil {
				t.Fatalf("metadata %s: %v", p.metadata, err)
			}
			if md.Type != "container" || md.Data.Attributes.Runscript == "" || md.Data.Attributes.Deffile != strings.TrimRight(tt.wantDef, "\n") {
				t.Errorf("metadata = %s", p.metadata)
			}
			for k, v := range tt.wantLabel {
				if md.Data.Attributes.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, md.Data.Attributes.Labels[k], v)
				}
			}
			n := 0
			filepath.WalkDir(src, func(_ string, d os.DirEntry, _ error) error {
				if !d.IsDir() {
					n++
				}
				return nil
			})
			if n != len(tt.files) {
				t.Errorf("source tree has %d files after planning, want %d", n, len(tt.files))
			}
		})
	}
}

func TestWriteBase(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, ".singularity.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	mine := "#!/bin/sh\necho mine\n"
	if err := os.WriteFile(filepath.Join(root, layout.Runscript[1:]), []byte(mine), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteBase(root); err != nil {
		t.Fatal(err)
	}
	for _, e := range BaseLayout() {
		if _, err := os.Lstat(filepath.Join(root, e.Path)); err != nil {
			t.Errorf("%s missing: %v", e.Path, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, layout.Runscript[1:])); string(b) != mine {
		t.Errorf("runscript replaced: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(root, "singularity")); l != layout.Runscript[1:] {
		t.Errorf("/singularity -> %q", l)
	}
}
