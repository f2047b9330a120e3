package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// images returns the same tree with metadata as a SIF, a bare SquashFS and
// a directory.
func images(t *testing.T) map[string]string {
	t.Helper()
	tree := withMeta(t, busyboxTree(t))
	sq := filepath.Join(t.TempDir(), "app.sqfs")
	if b, err := exec.Command("mksquashfs", tree, sq, "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	return map[string]string{"sif": buildSIF(t, tree), "squashfs": sq, "dir": tree}
}

func TestInspect(t *testing.T) {
	for kind, img := range images(t) {
		t.Run(kind, func(t *testing.T) {
			for _, tc := range []struct {
				flags []string
				want  string
			}{
				{nil, "maintainer: hpc team\nversion: 1.2\n"},
				{[]string{"--labels"}, "maintainer: hpc team\nversion: 1.2\n"},
				{[]string{"-r"}, "#!/bin/sh\necho hello from runscript\n"},
				{[]string{"--environment"}, "=== /.singularity.d/env/90-environment.sh ===\nexport GREETING=hello\n"},
				{[]string{"--deffile"}, "Bootstrap: scratch\n%labels\n    maintainer hpc team\n"},
			} {
				r := launch(t, append(append([]string{"inspect"}, tc.flags...), img)...)
				wantOK(t, r)
				got := r.Stdout
				if kind == "sif" { // a build adds the build labels (org.label-schema.*, org.opencontainers.*)
					got = dropLines(got, "org.")
					if tc.flags == nil && !strings.Contains(r.Stdout, "org.label-schema.build-date: ") {
						t.Errorf("inspect of a built SIF lacks the build labels: %q", r.Stdout)
					}
				}
				if got != tc.want && (kind != "sif" || !strings.Contains(got, tc.want)) {
					t.Errorf("inspect %v: got %q, want %q", tc.flags, r.Stdout, tc.want)
				}
			}
			r := launch(t, "inspect", "--json", "--all", img)
			wantOK(t, r)
			var out struct {
				Data struct {
					Attributes struct {
						Labels      map[string]string `json:"labels"`
						Runscript   string            `json:"runscript"`
						Environment map[string]string `json:"environment"`
						Deffile     string            `json:"deffile"`
					} `json:"attributes"`
				} `json:"data"`
				Type string `json:"type"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("inspect --json output is not JSON: %v\n%s", err, r.Stdout)
			}
			a := out.Data.Attributes
			if out.Type != "container" || a.Labels["version"] != "1.2" || !strings.Contains(a.Runscript, "hello from runscript") ||
				!strings.Contains(a.Environment["/.singularity.d/env/90-environment.sh"], "GREETING") || !strings.HasPrefix(a.Deffile, "Bootstrap: scratch") {
				t.Errorf("inspect --json --all = %s", r.Stdout)
			}
		})
	}
}

// dropLines is s without its lines that start with prefix.
func dropLines(s, prefix string) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestInspectNoMetadata(t *testing.T) {
	img := buildSIF(t, busyboxTree(t))
	r := launch(t, "inspect", "--json", img)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, `"org.label-schema.schema-version": "1.0"`) {
		t.Errorf("inspect --json of an image built from a tree without labels lacks the build labels: %s", r.Stdout)
	}
}

// badImages are files that are not usable images, by name.
func badImages(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not an image at all, just some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(buildSIF(t, busyboxTree(t)))
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(dir, "truncated.sif")
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"missing": filepath.Join(dir, "missing.sif"), "text": text, "truncated": trunc}
}

var badWant = map[string]string{"missing": "does not exist", "text": "not a SIF", "truncated": "truncated"}

func TestInspectBadInput(t *testing.T) {
	for name, p := range badImages(t) {
		t.Run(name, func(t *testing.T) {
			wantFatal(t, launch(t, "inspect", p), p, badWant[name])
		})
	}
}

func TestSif(t *testing.T) {
	img := buildSIF(t, withMeta(t, busyboxTree(t)))
	r := launch(t, "sif", "list", img)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	// As Apptainer writes them: the definition file, the inspect metadata,
	// the root filesystem.
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "SIF POSITION (start-end)") {
		t.Fatalf("sif list = %q, want a header and three descriptors", r.Stdout)
	}
	if !strings.Contains(lines[1], "Def.FILE") || !strings.Contains(lines[2], "JSON.Generic") ||
		!strings.Contains(lines[3], "FS (Squashfs/*System/"+runtime.GOARCH+")") {
		t.Errorf("sif list descriptors = %q", r.Stdout)
	}
	r = launch(t, "sif", "info", "3", img)
	wantOK(t, r)
	for _, w := range []string{"Partition Type:", "*System", "Architecture:", runtime.GOARCH} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("sif info 3 lacks %q: %s", w, r.Stdout)
		}
	}
	r = launch(t, "sif", "header", img)
	wantOK(t, r)
	if !strings.Contains(r.Stdout, "Primary Architecture: "+runtime.GOARCH) || !strings.Contains(r.Stdout, "Descriptors Total:") {
		t.Errorf("sif header = %s", r.Stdout)
	}
	wantFatal(t, launch(t, "sif", "info", "7", img), img, "descriptor 7")
	wantFatal(t, launch(t, "sif", "info", "x", img), `"x"`)
	// dump writes a descriptor's data, as siftool dump: the definition
	// file, and the SquashFS partition byte for byte.
	r = launch(t, "inspect", "--deffile", img)
	d := launch(t, "sif", "dump", "1", img)
	if wantOK(t, d); d.Stdout == "" || !strings.Contains(r.Stdout, strings.TrimSpace(d.Stdout)) {
		t.Errorf("sif dump 1 = %q, inspect --deffile = %q", d.Stdout, r.Stdout)
	}
	part := launch(t, "sif", "dump", "3", img)
	wantOK(t, part)
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(raw), part.Stdout); len(part.Stdout) < 4096 || part.Stdout[:4] != "hsqs" || i < 0 {
		t.Errorf("sif dump 3: %d bytes starting %q, not the image's SquashFS partition", len(part.Stdout), part.Stdout[:min(4, len(part.Stdout))])
	}
	wantFatal(t, launch(t, "sif", "dump", "7", img), img, "descriptor 7")
}

func TestSifBadInput(t *testing.T) {
	for name, p := range badImages(t) {
		for _, sub := range []string{"list", "header"} {
			t.Run(name+"/"+sub, func(t *testing.T) {
				wantFatal(t, launch(t, "sif", sub, p), p, badWant[name])
			})
		}
	}
}
