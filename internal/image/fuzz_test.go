package image

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// sifHeaderBytes returns a 128-byte SIF global header with the given
// descriptor count and descriptor table offset and size.
func sifHeaderBytes(total, descOff, descSize int64) []byte {
	b := make([]byte, sifHeaderSize)
	copy(b, "#!/usr/bin/env run-singularity\n")
	copy(b[32:], "SIF_MAGIC\x00")
	copy(b[42:], "01\x00")
	copy(b[45:], "02\x00")
	for off, v := range map[int]int64{80: total, 88: total, 96: descOff, 104: descSize} {
		binary.LittleEndian.PutUint64(b[off:], uint64(v))
	}
	return b
}

// smallSIF returns a valid SIF with a definition file, the OCI
// configuration object and a primary partition (a SquashFS magic only).
func smallSIF(tb testing.TB) []byte {
	tb.Helper()
	def, err := sif.NewDescriptorInput(sif.DataDeffile, strings.NewReader("Bootstrap: scratch\n"))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := sif.NewDescriptorInput(sif.DataGenericJSON, strings.NewReader(`{"a":1}`), sif.OptObjectName(OCIConfigObject))
	if err != nil {
		tb.Fatal(err)
	}
	part, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(append([]byte("hsqs"), make([]byte, 60)...)),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		tb.Fatal(err)
	}
	buf := sif.NewBuffer(nil)
	f, err := sif.CreateContainer(buf, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptorCapacity(4),
		sif.OptCreateWithDescriptors(def, js, part))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.UnloadContainer(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// hostileSIFs are SIF files that crashed launch inside sif/v2 (issue 14
// item 7), by name.
func hostileSIFs(tb testing.TB) map[string][]byte {
	oom := make([]byte, 32<<10)
	copy(oom, sifHeaderBytes(1<<36, 128, 32<<10-128))
	object := smallSIF(tb)
	d := int(binary.LittleEndian.Uint64(object[96:]))
	binary.LittleEndian.PutUint64(object[d+17:], ^uint64(0)) // first object's offset: -1
	binary.LittleEndian.PutUint64(object[d+25:], ^uint64(0)) // and size: -1
	return map[string][]byte{
		// "fatal error: runtime: out of memory": 2^36 descriptors.
		"oom": oom,
		// "panic: slice bounds out of range": table at -1, size -1.
		"slice": sifHeaderBytes(1, -1, -1),
		// "panic: makeslice: len out of range" reading the definition file.
		"object": object,
	}
}

func TestLoadSIFHostile(t *testing.T) {
	dir := t.TempDir()
	for name, data := range hostileSIFs(t) {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".sif")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(p)
			if err == nil {
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("error %q should name %s and say it is damaged", err, p)
			}
			if _, err := LoadSIF(sif.NewBuffer(data), p, int64(len(data))); err == nil {
				t.Error("LoadSIF accepted it")
			}
		})
	}
}

func TestLoadSIFGood(t *testing.T) {
	data := smallSIF(t)
	p := filepath.Join(t.TempDir(), "x.sif")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != FormatSIF || img.Size != 64 || string(data[img.Offset:img.Offset+4]) != "hsqs" {
		t.Errorf("Open = %+v", img)
	}
	fimg, err := LoadSIF(sif.NewBuffer(data), p, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := fimg.DescriptorsSize(); got != fimg.DescriptorsTotal()*sifDescriptorSize {
		t.Errorf("sif/v2 writes %d bytes for %d descriptors: sifDescriptorSize %d is stale",
			got, fimg.DescriptorsTotal(), sifDescriptorSize)
	}
	def, js, err := sifObjects(p, OCIConfigObject)
	if err != nil || def != "Bootstrap: scratch\n" || string(js) != `{"a":1}` {
		t.Errorf("sifObjects = %q, %q, %v", def, js, err)
	}
}

// FuzzOpen opens arbitrary files as images (seeded with a valid SIF and
// the hostile ones): Open and the SIF object reads of inspect must fail
// with one line naming the file, or find a SquashFS inside the file. The
// file is in memory; Open only adds stat, open and read to this.
func FuzzOpen(f *testing.F) {
	f.Add(smallSIF(f))
	for _, data := range hostileSIFs(f) {
		f.Add(data)
	}
	f.Add(append([]byte("hsqs"), make([]byte, 92)...))
	f.Add([]byte("just text"))
	const p = "/images/fuzz.img"
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanAgrees(t, data)
		check := func(what string, err error) {
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, p) {
				t.Fatalf("%s: error %q is not one line naming the file", what, msg)
			}
		}
		size := int64(len(data))
		img, err := openFile(p, sif.NewBuffer(data), size, data[:min(len(data), sifHeaderSize)])
		if err != nil {
			check("Open", err)
			return
		}
		if img.Offset < 0 || img.Size < 0 || img.Offset+img.Size > size || !bytes.HasPrefix(data[img.Offset:], squashMagic) {
			t.Fatalf("Open = %+v for a %d-byte file", img, len(data))
		}
		if img.Format == FormatSIF {
			if _, _, err := readSIFObjects(sif.NewBuffer(data), p, size, OCIConfigObject); err != nil {
				check("reading SIF objects", err)
			}
		}
	})
}
