package build

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/sifinfo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeSquash is a stand-in root filesystem: SquashFS magic and some bytes.
var fakeSquash = append([]byte("hsqs"), bytes.Repeat([]byte("rootfs"), 1000)...)

func TestAssembleGolden(t *testing.T) {
	tests := []struct {
		name    string
		arch    string
		deffile []byte
	}{
		{name: "amd64-nodeffile", arch: "amd64"},
		{name: "amd64-deffile", arch: "amd64", deffile: []byte("Bootstrap: localimage\nFrom: base.sif\n")},
		{name: "arm64-deffile", arch: "arm64", deffile: []byte("Bootstrap: scratch\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf sif.Buffer
			p := Parts{Squash: bytes.NewReader(fakeSquash), Arch: tc.arch, Deffile: tc.deffile}
			if err := Assemble(&buf, p, sif.OptCreateDeterministic()); err != nil {
				t.Fatalf("Assemble: %v", err)
			}
			f, err := sif.LoadContainer(sif.NewBuffer(buf.Bytes()))
			if err != nil {
				t.Fatalf("reading back: %v", err)
			}
			defer f.UnloadContainer() //nolint:errcheck // in memory
			var got bytes.Buffer
			if err := sifinfo.WriteHeader(&got, f); err != nil {
				t.Fatal(err)
			}
			if err := sifinfo.WriteList(&got, f); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&got, "sha256: %x\n", sha256.Sum256(buf.Bytes()))
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("SIF layout differs from %s:\ngot:\n%s\nwant:\n%s", golden, got.String(), want)
			}
		})
	}
}

func TestAssembleReadBack(t *testing.T) {
	tests := []struct {
		name    string
		deffile []byte
	}{
		{"without deffile", nil},
		{"with deffile", []byte("Bootstrap: scratch\n%labels\n  a b\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf sif.Buffer
			when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
			p := Parts{Squash: bytes.NewReader(fakeSquash), Arch: "amd64", Deffile: tc.deffile}
			err := Assemble(&buf, p, sif.OptCreateWithTime(when),
				sif.OptCreateWithID("11111111-2222-3333-4444-555555555555"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := sif.LoadContainer(sif.NewBuffer(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			defer f.UnloadContainer() //nolint:errcheck // in memory
			if f.ID() != "11111111-2222-3333-4444-555555555555" || !f.CreatedAt().Equal(when) {
				t.Errorf("header ID %s time %v, want the ones given", f.ID(), f.CreatedAt())
			}
			if f.PrimaryArch() != "amd64" || f.LaunchScript() != LaunchScript {
				t.Errorf("primary arch %q launch script %q", f.PrimaryArch(), f.LaunchScript())
			}
			d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
			if err != nil {
				t.Fatalf("no primary partition: %v", err)
			}
			fs, pt, arch, err := d.PartitionMetadata()
			if err != nil || fs != sif.FsSquash || pt != sif.PartPrimSys || arch != "amd64" {
				t.Errorf("partition %v/%v/%q (%v), want Squashfs/System/amd64", fs, pt, arch, err)
			}
			if d.Offset()%4096 != 0 {
				t.Errorf("partition at %d, not 4096-aligned", d.Offset())
			}
			data, err := d.GetData()
			if err != nil || !bytes.Equal(data, fakeSquash) {
				t.Errorf("partition data differs from the SquashFS given (%v)", err)
			}
			dd, err := f.GetDescriptor(sif.WithDataType(sif.DataDeffile))
			if tc.deffile == nil {
				if err == nil {
					t.Errorf("deffile descriptor %d present, none given", dd.ID())
				}
				return
			}
			if err != nil {
				t.Fatalf("no deffile descriptor: %v", err)
			}
			if got, _ := dd.GetData(); !bytes.Equal(got, tc.deffile) {
				t.Errorf("deffile %q, want %q", got, tc.deffile)
			}
		})
	}
}
