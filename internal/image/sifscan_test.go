package image

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// part is a partition of a test SIF.
type part struct {
	fs   sif.FSType
	pt   sif.PartType
	arch string
}

// partsSIF returns a SIF holding a definition file and the partitions ps
// (each a SquashFS magic and some bytes), in that order.
func partsSIF(tb testing.TB, ps ...part) []byte {
	tb.Helper()
	def, err := sif.NewDescriptorInput(sif.DataDeffile, bytes.NewReader([]byte("Bootstrap: scratch\n")))
	if err != nil {
		tb.Fatal(err)
	}
	dis := []sif.DescriptorInput{def}
	for i, p := range ps {
		body := append([]byte("hsqs"), make([]byte, 60+i)...)
		di, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(body),
			sif.OptPartitionMetadata(p.fs, p.pt, p.arch))
		if err != nil {
			tb.Fatal(err)
		}
		dis = append(dis, di)
	}
	buf := sif.NewBuffer(nil)
	f, err := sif.CreateContainer(buf, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptors(dis...))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.UnloadContainer(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// checkScanAgrees fails t when scanSIF accepts data but finds other than
// what sif/v2 finds (loadPartitions), or accepts what sif/v2 refuses.
func checkScanAgrees(t *testing.T, data []byte) (scanned bool) {
	t.Helper()
	const p = "/images/x.sif"
	head := data[:min(len(data), sifHeaderSize)]
	got, ok := scanSIF(p, bytes.NewReader(data), int64(len(data)), head)
	if !ok {
		return false
	}
	want, err := loadPartitions(p, sif.NewBuffer(data), int64(len(data)), head)
	if err != nil {
		t.Fatalf("scanSIF found %+v where sif/v2 refuses the file: %v", got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scanSIF found %+v (overlay %+v), sif/v2 %+v (overlay %+v)", got, got.Overlay, want, want.Overlay)
	}
	return true
}

func TestScanSIFMatchesLibrary(t *testing.T) {
	prim := part{sif.FsSquash, sif.PartPrimSys, "amd64"}
	for _, tc := range []struct {
		name  string
		ps    []part
		patch func(data []byte) // what sif/v2 will not write
		scan  bool              // whether the fast path takes it
	}{
		{"primary only", []part{prim}, nil, true},
		{"primary and overlay", []part{prim, {sif.FsExt3, sif.PartOverlay, "amd64"}}, nil, true},
		{"overlay first, two overlays", []part{{sif.FsExt3, sif.PartOverlay, "amd64"}, prim, {sif.FsSquash, sif.PartOverlay, "amd64"}}, nil, true},
		{"data partition beside", []part{{sif.FsRaw, sif.PartData, "amd64"}, prim}, nil, true},
		{"unknown arch code", []part{prim}, func(b []byte) { copy(descAt(b, 1)[descExtra+partArch:], "99") }, true},
		{"unused primary", []part{prim, {sif.FsSquash, sif.PartSystem, "amd64"}}, func(b []byte) {
			descAt(b, 1)[descUsed] = 0
			binary.LittleEndian.PutUint32(descAt(b, 2)[descExtra+partType:], uint32(sif.PartPrimSys))
		}, true},
		{"two primaries", []part{prim, {sif.FsSquash, sif.PartOverlay, "amd64"}}, func(b []byte) {
			binary.LittleEndian.PutUint32(descAt(b, 2)[descExtra+partType:], uint32(sif.PartPrimSys))
		}, false},
		{"other spec version", []part{prim}, func(b []byte) { copy(b[42:], "02") }, false},
		{"object outside the file", []part{prim}, func(b []byte) {
			binary.LittleEndian.PutUint64(descAt(b, 0)[descSize:], 1<<40)
		}, false},
		{"ext3 primary", []part{{sif.FsExt3, sif.PartPrimSys, "amd64"}}, nil, false},
		{"no primary", []part{{sif.FsExt3, sif.PartOverlay, "amd64"}}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := partsSIF(t, tc.ps...)
			if tc.patch != nil {
				tc.patch(data)
			}
			if got := checkScanAgrees(t, data); got != tc.scan {
				t.Errorf("scanSIF took it: %v, want %v", got, tc.scan)
			}
		})
	}
	for name, data := range hostileSIFs(t) {
		t.Run("hostile "+name, func(t *testing.T) {
			if checkScanAgrees(t, data) {
				t.Error("scanSIF took a damaged file")
			}
		})
	}
}

// descAt returns descriptor i of the SIF data, to be changed in place.
func descAt(data []byte, i int) []byte {
	off := int(parseSIFHeader(data).descOffset) + i*sifDescriptorSize
	return data[off : off+sifDescriptorSize]
}

// TestScanSIFArchs holds sifArchs to sif/v2's table: every GOARCH sif/v2
// knows reads back the same through both.
func TestScanSIFArchs(t *testing.T) {
	archs := []string{"386", "amd64", "arm", "arm64", "ppc64", "ppc64le", "mips", "mipsle", "mips64",
		"mips64le", "s390x", "riscv64", "loong64"}
	if len(archs) != len(sifArchs) {
		t.Fatalf("%d architectures tested, sifArchs has %d", len(archs), len(sifArchs))
	}
	for _, a := range archs {
		data := partsSIF(t, part{sif.FsSquash, sif.PartPrimSys, a})
		if !checkScanAgrees(t, data) {
			t.Fatalf("%s: scanSIF declined", a)
		}
		img, _ := scanSIF("x", bytes.NewReader(data), int64(len(data)), data[:sifHeaderSize])
		if img.Arch != a {
			t.Errorf("%s: Arch %q", a, img.Arch)
		}
	}
}
