// Package sifedit changes the data objects of a SIF file in place, as
// Apptainer's sif add, del and setprim do: it opens the file without
// following a link, requires a regular file, and refuses one that is
// signed (a signature would no longer match) unless forced. It must not
// read images for running them (internal/image does) nor show them
// (internal/sifinfo does).
package sifedit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/sylabs/sif/v2/pkg/sif"
	"golang.org/x/sys/unix"
)

// File is a SIF file opened for changing.
type File struct {
	*sif.FileImage
	f *os.File
}

// Open opens the SIF path read-write.
func Open(path string) (*File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("SIF file %s is a symbolic link: name the file itself", path)
		}
		return nil, fmt.Errorf("opening SIF file %s for writing: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a SIF file (not a regular file)", path)
	}
	if !IsSIF(f) {
		f.Close()
		return nil, fmt.Errorf("%s is not a SIF file (no SIF magic in its header)", path)
	}
	fimg, err := sif.LoadContainer(f, sif.OptLoadWithCloseOnUnload(false))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading SIF file %s: %w", path, err)
	}
	return &File{FileImage: fimg, f: f}, nil
}

// IsSIF reports whether r starts like a SIF file.
func IsSIF(r io.ReaderAt) bool {
	head := make([]byte, 41)
	n, _ := r.ReadAt(head, 0)
	return n == 41 && bytes.Equal(head[32:41], []byte("SIF_MAGIC"))
}

// Close writes nothing more and closes the file.
func (f *File) Close() error {
	_ = f.UnloadContainer()
	return f.f.Close()
}

// Signed reports whether the SIF holds a signature.
func (f *File) Signed() bool {
	ds, err := f.GetDescriptors(sif.WithDataType(sif.DataSignature))
	return err == nil && len(ds) > 0
}

// CheckUnsigned refuses a signed SIF unless force.
func (f *File) CheckUnsigned(force bool) error {
	if f.Signed() && !force {
		return fmt.Errorf("SIF file %s is signed: changing it would break its signature (--force to change it anyway)", f.f.Name())
	}
	return nil
}

// AddPartition appends the contents of r as a partition of type pt with
// filesystem fs for architecture arch ("" for the SIF's primary one, or
// this machine's), as Apptainer does for an overlay partition.
func (f *File) AddPartition(r io.Reader, fs sif.FSType, pt sif.PartType, arch string, opts ...sif.DescriptorInputOpt) error {
	if arch == "" {
		arch = f.PrimaryArch()
		if arch == "unknown" {
			arch = runtime.GOARCH
		}
	}
	di, err := sif.NewDescriptorInput(sif.DataPartition, r, append([]sif.DescriptorInputOpt{sif.OptPartitionMetadata(fs, pt, arch)}, opts...)...)
	if err != nil {
		return fmt.Errorf("adding a partition to %s: %w", f.f.Name(), err)
	}
	if err := f.AddObject(di); err != nil {
		return fmt.Errorf("adding a partition to %s: %w", f.f.Name(), err)
	}
	return nil
}

// Add appends the contents of r as a data object of type dt.
func (f *File) Add(r io.Reader, dt sif.DataType, opts ...sif.DescriptorInputOpt) error {
	di, err := sif.NewDescriptorInput(dt, r, opts...)
	if err != nil {
		return fmt.Errorf("adding a data object to %s: %w", f.f.Name(), err)
	}
	if err := f.AddObject(di); err != nil {
		return fmt.Errorf("adding a data object to %s: %w", f.f.Name(), err)
	}
	return nil
}

// Delete deletes the data object id, compacting the file when it was the
// last one (so a detached overlay gives its space back).
func (f *File) Delete(id uint32) error {
	if _, err := f.GetDescriptor(sif.WithID(id)); err != nil {
		return fmt.Errorf("SIF file %s has no data object %d (see 'launch sif list %s')", f.f.Name(), id, f.f.Name())
	}
	if err := f.DeleteObject(id, sif.OptDeleteZero(true), sif.OptDeleteCompact(true)); err != nil {
		return fmt.Errorf("deleting data object %d of %s: %w", id, f.f.Name(), err)
	}
	return nil
}

// SetPrimary makes partition id the primary system partition.
func (f *File) SetPrimary(id uint32) error {
	if err := f.SetPrimPart(id); err != nil {
		return fmt.Errorf("making data object %d the primary partition of %s: %w", id, f.f.Name(), err)
	}
	return nil
}
