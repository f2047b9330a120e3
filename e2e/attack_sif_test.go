package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// craftedSIFHeader returns a 128-byte SIF global header (spec 01) with the
// given descriptor count and descriptor table offset and size, which
// github.com/sylabs/sif/v2 trusts.
func craftedSIFHeader(total, descOff, descSize int64) []byte {
	b := make([]byte, 128)
	copy(b, "#!/usr/bin/env run-singularity\n")
	copy(b[32:], "SIF_MAGIC\x00")
	copy(b[42:], "01\x00")
	copy(b[45:], "02\x00") // amd64
	for off, v := range map[int]int64{80: total, 88: total, 96: descOff, 104: descSize} {
		binary.LittleEndian.PutUint64(b[off:], uint64(v))
	}
	return b
}

// craftedSIFs writes the hostile SIF files into dir and returns their
// paths. The first two are those of issue 14 item 7: sif/v2 allocated 2^36
// descriptors for the first ("fatal error: runtime: out of memory") and
// sliced out of range reading a table at offset -1 of size -1 for the second
// ("panic: slice bounds out of range"). The third is a runnable image whose
// definition-file object is at offset -1, size -1, on which inspect
// panicked in make.
func craftedSIFs(t *testing.T, dir string) []string {
	t.Helper()
	oom := make([]byte, 32<<10)
	copy(oom, craftedSIFHeader(1<<36, 128, 32<<10-128))

	good := filepath.Join(t.TempDir(), "good.sif")
	sqfs, err := os.ReadFile(squashImage(t, busyboxTree(t)))
	if err != nil {
		t.Fatal(err)
	}
	def, err := sif.NewDescriptorInput(sif.DataDeffile, strings.NewReader("Bootstrap: scratch\n"))
	if err != nil {
		t.Fatal(err)
	}
	part, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(sqfs),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, runtime.GOARCH))
	if err != nil {
		t.Fatal(err)
	}
	writeSIF(t, good, def, part)
	object, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// The first descriptor (the definition file): Offset at byte 17, Size at 25.
	d := int(binary.LittleEndian.Uint64(object[96:]))
	binary.LittleEndian.PutUint64(object[d+17:], ^uint64(0))
	binary.LittleEndian.PutUint64(object[d+25:], ^uint64(0))

	var paths []string
	for name, data := range map[string][]byte{
		"oom.sif":    oom,
		"slice.sif":  craftedSIFHeader(1, -1, -1),
		"object.sif": object,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestAttackSIFCrafted gives the crafted SIF files to every command that
// reads a SIF: each must refuse with one FATAL line naming the file, within
// a few seconds and under a 4 GiB address-space limit (the old code asked for 40 TB).
func TestAttackSIFCrafted(t *testing.T) {
	dir := t.TempDir()
	// ulimit -v bounds the memory whatever the machine's overcommit policy.
	limit := []string{"sh", "-c", `ulimit -v 4194304 && exec "$0" "$@"`}
	imgs := craftedSIFs(t, dir)
	for _, img := range imgs {
		name := filepath.Base(img)
		out := filepath.Join(dir, "out-"+name)
		for cmd, args := range map[string][]string{
			"exec":         {"exec", img, "true"},
			"inspect":      {"inspect", img},
			"inspect-json": {"inspect", "--json", "--all", img},
			"sif-list":     {"sif", "list", img},
			"sif-header":   {"sif", "header", img},
			"sif-info":     {"sif", "info", "1", img},
			"sif-dump":     {"sif", "dump", "1", img},
			"sandbox":      {"build", "--sandbox", out, img},
			"repack":       {"build", out + ".sif", img},
		} {
			t.Run(name+"/"+cmd, func(t *testing.T) {
				start := time.Now()
				r := runCmd(t, runOpts{Timeout: 30 * time.Second}, limit, args...)
				wantFatal(t, r, name, "SIF")
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("took %v", d)
				}
			})
		}
		for _, p := range []string{out, out + ".sif"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("build left %s", p)
			}
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != len(imgs) {
		t.Errorf("left behind in %s: %v (%v)", dir, ents, err)
	}
}
