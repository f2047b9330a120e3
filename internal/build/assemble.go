package build

import (
	"bytes"
	"fmt"
	"io"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// LaunchScript is the first line of every SIF launch builds, as Apptainer
// writes it, so that an executable SIF runs with a run-singularity helper.
const LaunchScript = "#!/usr/bin/env run-singularity\n"

// Parts are the data objects of a SIF that launch builds.
type Parts struct {
	// Squash is the SquashFS root filesystem (the primary system partition).
	Squash io.Reader
	// Arch is its architecture in GOARCH terms.
	Arch string
	// Deffile is the definition file to store as a DataDeffile descriptor
	// (nil: none).
	Deffile []byte
	// JSON are generic JSON data objects to store, by name (such as
	// Apptainer's "oci-config.json"), in this order.
	JSON []JSONObject
}

// JSONObject is a named JSON data object of a SIF.
type JSONObject struct {
	Name string
	Data []byte
}

// Assemble writes a SIF made of p into rw, laid out as Apptainer does: the
// definition file first (when there is one), then the primary SquashFS
// partition. opts are passed on to sif.CreateContainer (deterministic
// options for tests).
func Assemble(rw sif.ReadWriter, p Parts, opts ...sif.CreateOpt) error {
	var dis []sif.DescriptorInput
	if p.Deffile != nil {
		di, err := sif.NewDescriptorInput(sif.DataDeffile, bytes.NewReader(p.Deffile))
		if err != nil {
			return fmt.Errorf("adding definition file: %w", err)
		}
		dis = append(dis, di)
	}
	for _, j := range p.JSON {
		di, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(j.Data), sif.OptObjectName(j.Name))
		if err != nil {
			return fmt.Errorf("adding %s: %w", j.Name, err)
		}
		dis = append(dis, di)
	}
	di, err := sif.NewDescriptorInput(sif.DataPartition, p.Squash,
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, p.Arch))
	if err != nil {
		return fmt.Errorf("adding root filesystem partition: %w", err)
	}
	dis = append(dis, di)
	all := append([]sif.CreateOpt{
		sif.OptCreateWithLaunchScript(LaunchScript),
		sif.OptCreateWithDescriptors(dis...),
		sif.OptCreateWithCloseOnUnload(false),
	}, opts...)
	f, err := sif.CreateContainer(rw, all...)
	if err != nil {
		return err
	}
	return f.UnloadContainer()
}
