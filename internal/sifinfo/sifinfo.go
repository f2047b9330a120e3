// Package sifinfo reads and describes the structure of SIF files for
// `launch sif`: the global header, the descriptor list and one descriptor.
// It only reads; it never changes an image.
package sifinfo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"text/tabwriter"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/image"
)

// File is an opened SIF file. Close it when done.
type File struct {
	*sif.FileImage
	f *os.File
}

// Open opens path as a SIF file and checks it as image.LoadSIF does: the
// header's descriptor table and every data object it describes must lie
// inside the file. The errors name the file and say what is wrong with it.
func Open(path string) (*File, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("SIF file %s does not exist", path)
	case err != nil:
		return nil, fmt.Errorf("opening SIF file %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a SIF file", path)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening SIF file %s: %w", path, err)
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a SIF file (not a regular file)", path)
	}
	head := make([]byte, 41)
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head[32:41], []byte("SIF_MAGIC")) {
		f.Close()
		return nil, fmt.Errorf("%s is not a SIF file (no SIF magic in its header)", path)
	}
	fimg, err := image.LoadSIF(f, path, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{FileImage: fimg, f: f}, nil
}

// Close releases the file.
func (f *File) Close() error { return f.f.Close() }

// WriteHeader writes the SIF global header to w, one "Name: value" per line.
func WriteHeader(w io.Writer, f *sif.FileImage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Launch Script:\t%q\n", f.LaunchScript())
	fmt.Fprintf(tw, "Version:\t%s\n", f.Version())
	fmt.Fprintf(tw, "Primary Architecture:\t%s\n", f.PrimaryArch())
	fmt.Fprintf(tw, "ID:\t%s\n", f.ID())
	fmt.Fprintf(tw, "Created At:\t%s\n", f.CreatedAt().UTC())
	fmt.Fprintf(tw, "Modified At:\t%s\n", f.ModifiedAt().UTC())
	fmt.Fprintf(tw, "Descriptors Free:\t%d\n", f.DescriptorsFree())
	fmt.Fprintf(tw, "Descriptors Total:\t%d\n", f.DescriptorsTotal())
	fmt.Fprintf(tw, "Descriptors Offset:\t%d\n", f.DescriptorsOffset())
	fmt.Fprintf(tw, "Descriptors Size:\t%d\n", f.DescriptorsSize())
	fmt.Fprintf(tw, "Data Offset:\t%d\n", f.DataOffset())
	fmt.Fprintf(tw, "Data Size:\t%d\n", f.DataSize())
	return tw.Flush()
}

// WriteList writes a table of the descriptors in f to w: ID, GROUP, LINK,
// SIF POSITION (start-end) and TYPE, as `apptainer sif list` does.
func WriteList(w io.Writer, f *sif.FileImage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tLINK\tSIF POSITION (start-end)\tTYPE")
	f.WithDescriptors(func(d sif.Descriptor) bool {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d-%d\t%s\n", d.ID(), group(d), link(d),
			d.Offset(), d.Offset()+d.Size(), typeOf(d))
		return false
	})
	return tw.Flush()
}

// WriteData copies the data of descriptor id of f to w, as siftool dump
// does: no more than the descriptor's size, which sif/v2 bounds by the
// file.
func WriteData(w io.Writer, f *sif.FileImage, id uint32) error {
	d, err := f.GetDescriptor(sif.WithID(id))
	if err != nil {
		return fmt.Errorf("descriptor %d: %w", id, err)
	}
	if _, err := io.Copy(w, io.LimitReader(d.GetReader(), d.Size())); err != nil {
		return fmt.Errorf("descriptor %d: %w", id, err)
	}
	return nil
}

// WriteInfo writes everything about descriptor id of f to w.
func WriteInfo(w io.Writer, f *sif.FileImage, id uint32) error {
	d, err := f.GetDescriptor(sif.WithID(id))
	if err != nil {
		return fmt.Errorf("descriptor %d: %w", id, err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Data Type:\t%s\n", d.DataType())
	fmt.Fprintf(tw, "ID:\t%d\n", d.ID())
	fmt.Fprintf(tw, "Group ID:\t%s\n", group(d))
	fmt.Fprintf(tw, "Linked ID:\t%s\n", link(d))
	fmt.Fprintf(tw, "Offset:\t%d\n", d.Offset())
	fmt.Fprintf(tw, "Size:\t%d\n", d.Size())
	fmt.Fprintf(tw, "Created At:\t%s\n", d.CreatedAt().UTC())
	fmt.Fprintf(tw, "Modified At:\t%s\n", d.ModifiedAt().UTC())
	if n := d.Name(); n != "" {
		fmt.Fprintf(tw, "Name:\t%s\n", n)
	}
	switch d.DataType() {
	case sif.DataPartition:
		if fs, pt, arch, err := d.PartitionMetadata(); err == nil {
			fmt.Fprintf(tw, "Filesystem Type:\t%s\nPartition Type:\t%s\nArchitecture:\t%s\n", fs, pt, arch)
		}
	case sif.DataSignature:
		if ht, fp, err := d.SignatureMetadata(); err == nil {
			fmt.Fprintf(tw, "Hash Type:\t%v\nEntity:\t%X\n", ht, fp)
		}
	case sif.DataCryptoMessage:
		if ft, mt, err := d.CryptoMessageMetadata(); err == nil {
			fmt.Fprintf(tw, "Format Type:\t%s\nMessage Type:\t%s\n", ft, mt)
		}
	case sif.DataSBOM:
		if sf, err := d.SBOMMetadata(); err == nil {
			fmt.Fprintf(tw, "SBOM Format:\t%s\n", sf)
		}
	}
	return tw.Flush()
}

func group(d sif.Descriptor) string {
	if id := d.GroupID(); id != 0 {
		return fmt.Sprint(id)
	}
	return "NONE"
}

func link(d sif.Descriptor) string {
	id, isGroup := d.LinkedID()
	switch {
	case id == 0:
		return "NONE"
	case isGroup:
		return fmt.Sprintf("%d (G)", id)
	}
	return fmt.Sprint(id)
}

func typeOf(d sif.Descriptor) string {
	dt := d.DataType()
	switch dt {
	case sif.DataPartition:
		if fs, pt, arch, err := d.PartitionMetadata(); err == nil {
			return fmt.Sprintf("%s (%s/%s/%s)", dt, fs, pt, arch)
		}
	case sif.DataSignature:
		if ht, _, err := d.SignatureMetadata(); err == nil {
			return fmt.Sprintf("%s (%v)", dt, ht)
		}
	case sif.DataCryptoMessage:
		if ft, mt, err := d.CryptoMessageMetadata(); err == nil {
			return fmt.Sprintf("%s (%s/%s)", dt, ft, mt)
		}
	case sif.DataSBOM:
		if f, err := d.SBOMMetadata(); err == nil {
			return fmt.Sprintf("%s (%s)", dt, f)
		}
	}
	return dt.String()
}
