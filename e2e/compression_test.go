package e2e

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// squashCompression returns the compression id of the SquashFS partition of
// a SIF (superblock offset 20: 1 gzip, 3 lzo, 4 xz, 5 lz4, 6 zstd).
func squashCompression(t *testing.T, path string) uint16 {
	t.Helper()
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	defer func() { _ = f.UnloadContainer() }()
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		t.Fatalf("%s: no root filesystem partition: %v", path, err)
	}
	sb := make([]byte, 96)
	if _, err := d.GetReader().Read(sb); err != nil {
		t.Fatal(err)
	}
	if string(sb[:4]) != "hsqs" {
		t.Fatalf("%s: partition is not SquashFS", path)
	}
	return binary.LittleEndian.Uint16(sb[20:22])
}

// TestBuildCompression: launch build makes gzip by default (what Apptainer
// makes), --compression, LAUNCH_COMPRESSION or launch.conf's
// build.compression pick another, the flag winning; the image runs either
// way. A bad value in launch.conf is one FATAL line naming file and key.
func TestBuildCompression(t *testing.T) {
	tree := busyboxTree(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "launch.conf")
	if err := os.WriteFile(conf, []byte("[build]\ncompression = \"lz4\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want uint16
	}{
		{"default gzip", nil, nil, 1},
		{"flag", nil, []string{"--compression", "zstd"}, 6},
		{"variable", []string{"LAUNCH_COMPRESSION=lz4"}, nil, 5},
		{"launch.conf", []string{"LAUNCH_CONF=" + conf}, nil, 5},
		{"flag over launch.conf", []string{"LAUNCH_CONF=" + conf}, []string{"--compression", "xz"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "img.sif")
			args := append(append([]string{"build", "-q"}, tc.args...), out, tree)
			wantOK(t, launchWith(t, runOpts{Env: tc.env}, args...))
			if got := squashCompression(t, out); got != tc.want {
				t.Errorf("compression id %d, want %d", got, tc.want)
			}
			r := launch(t, "exec", out, "echo", "ran")
			wantOK(t, r)
			if strings.TrimSpace(r.Stdout) != "ran" {
				t.Errorf("exec printed %q", r.Stdout)
			}
		})
	}

	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("[build]\ncompression = \"bzip9\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := launchWith(t, runOpts{Env: []string{"LAUNCH_CONF=" + bad}}, "build", filepath.Join(dir, "x.sif"), tree)
	wantFatal(t, r, bad+":2", "build.compression", "bzip9")
	if _, err := os.Stat(filepath.Join(dir, "x.sif")); err == nil {
		t.Errorf("x.sif was made despite the error")
	}
}
