// Package image opens container images for running: a SIF file, a bare
// SquashFS file or a directory (sandbox). It finds where the root filesystem
// is (file and byte offset) and checks it can be run on this machine. It never
// mounts anything; internal/fuse and internal/mountplan do that.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/transport"
)

// Format is the kind of image file.
type Format int

// The image formats launch can run.
const (
	FormatSIF Format = iota + 1
	FormatSquashFS
	FormatDir
)

func (f Format) String() string {
	switch f {
	case FormatSIF:
		return "sif"
	case FormatSquashFS:
		return "squashfs"
	case FormatDir:
		return "sandbox"
	}
	return "unknown"
}

// Image is an opened image: where its root filesystem lies. It is plain data
// and holds no open file.
type Image struct {
	// Path is the image path as given.
	Path string
	// Format says how to read it.
	Format Format
	// Offset and Size locate the SquashFS root filesystem inside Path
	// (Offset 0 and the file size for a bare SquashFS; unused for a dir).
	Offset, Size int64
	// Arch is the image's architecture in GOARCH terms ("" when unknown).
	Arch string
	// Overlay is a SIF's overlay partition (the first), nil when none.
	Overlay *Partition `json:",omitempty"`
}

// Partition is a partition of a SIF other than its root filesystem.
type Partition struct {
	// ID is its descriptor's ID.
	ID uint32
	// FS is its filesystem type as SIF names it ("Ext3", "Squashfs", …).
	FS string
	// Offset and Size locate it in the file.
	Offset, Size int64
}

// squashMagic is the little-endian SquashFS superblock magic "hsqs".
var squashMagic = []byte("hsqs")

// sifMagic is at offset 32 of every SIF file.
var sifMagic = []byte("SIF_MAGIC")

// Open inspects path and returns where its root filesystem is. The errors
// name the path and say what is wrong with it.
func Open(path string) (*Image, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if m, ok := transport.Unsupported(path); ok {
				return nil, errors.New(m)
			}
			if transport.IsWebFile(path) {
				return nil, fmt.Errorf("image %s: a URL of a SIF file is not run as it is: fetch it with 'launch pull URL' and run the file", path)
			}
			return nil, fmt.Errorf("image %s does not exist", path)
		}
		return nil, fmt.Errorf("opening image %s: %w", path, err)
	}
	if fi.IsDir() {
		return &Image{Path: path, Format: FormatDir, Arch: runtime.GOARCH}, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("image %s is not a regular file or a directory", path)
	}
	// O_NONBLOCK: should path become a FIFO after the Stat, opening and
	// reading it must not hang.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening image %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, sifHeaderSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading image %s: %w", path, err)
	}
	return openFile(path, f, fi.Size(), head[:n])
}

// openFile is Open of the image file f of size bytes, whose first bytes are
// head.
func openFile(path string, f sif.ReadWriter, size int64, head []byte) (*Image, error) {
	switch {
	case len(head) >= 41 && bytes.Equal(head[32:41], sifMagic):
		return openSIF(path, f, size, head)
	case bytes.HasPrefix(head, squashMagic):
		return &Image{Path: path, Format: FormatSquashFS, Offset: 0, Size: size}, nil
	}
	return nil, fmt.Errorf("image %s is %w", path, ErrNotImage)
}

// ErrNotImage is what Open's error wraps when the file is in no format it
// knows (rather than a SIF or SquashFS file that is damaged).
var ErrNotImage = errors.New("not a SIF, SquashFS or directory image")

// openSIF finds the primary system partition of the SIF f, whose first
// bytes are head: by scanSIF, or where that declines, through sif/v2.
func openSIF(path string, f sif.ReadWriter, fileSize int64, head []byte) (*Image, error) {
	img, ok := scanSIF(path, f, fileSize, head)
	if !ok {
		var err error
		if img, err = loadPartitions(path, f, fileSize, head); err != nil {
			return nil, err
		}
	}
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, img.Offset); err != nil || !bytes.Equal(magic, squashMagic) {
		return nil, fmt.Errorf("SIF %s: root filesystem partition is not valid SquashFS", path)
	}
	return img, nil
}

// loadPartitions is openSIF through sif/v2.
func loadPartitions(path string, f sif.ReadWriter, fileSize int64, head []byte) (*Image, error) {
	fimg, err := loadSIF(f, path, fileSize, head)
	if err != nil {
		return nil, err
	}
	d, err := fimg.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return nil, fmt.Errorf("SIF %s has no primary system partition (no root filesystem to run)", path)
	}
	fs, _, arch, err := d.PartitionMetadata()
	if err != nil {
		return nil, fmt.Errorf("reading partition of SIF %s: %w", path, err)
	}
	if fs != sif.FsSquash {
		return nil, fmt.Errorf("SIF %s: root filesystem is %s, only squashfs can be run", path, fs)
	}
	img := &Image{Path: path, Format: FormatSIF, Offset: d.Offset(), Size: d.Size(), Arch: normArch(arch)}
	if ds, err := fimg.GetDescriptors(sif.WithPartitionType(sif.PartOverlay)); err == nil && len(ds) > 0 {
		o := ds[0]
		ofs, _, _, _ := o.PartitionMetadata()
		img.Overlay = &Partition{ID: o.ID(), FS: ofs.String(), Offset: o.Offset(), Size: o.Size()}
	}
	return img, nil
}

// normArch maps SIF's "unknown" to "".
func normArch(a string) string {
	if a == "unknown" {
		return ""
	}
	return a
}

// CheckArch returns an error when the image was built for another
// architecture than this machine's.
func (img *Image) CheckArch() error {
	if img.Arch != "" && img.Arch != runtime.GOARCH {
		return fmt.Errorf("image %s is built for %s, this machine is %s", img.Path, img.Arch, runtime.GOARCH)
	}
	return nil
}
