// Package overlayimg makes overlay images, as Apptainer's overlay create
// does: an ext3 filesystem (mkfs.ext3 -d) holding the empty upper/ and
// work/ directories of an overlay (and any --create-dir below upper/),
// owned by the user (or by root, for --fakeroot), either as a file of its
// own or appended to an existing SIF as its overlay partition (the
// descriptor Apptainer writes: a partition of type overlay, filesystem
// ext3, the SIF's architecture). It must not mount anything: the container
// (internal/container) does, through internal/fuse.
package overlayimg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sylabs/sif/v2/pkg/sif"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/sifedit"
)

// MinSize is the smallest image, in MiB (Apptainer's limit too).
const MinSize = 64

// Options say what to make.
type Options struct {
	// Path is the image file to make, or an existing SIF to add to.
	Path string
	// Size is the size in MiB.
	Size int
	// Sparse makes a sparse file (only what is written takes space).
	Sparse bool
	// Dirs are directories to make below upper/ (absolute, inside).
	Dirs []string
	// Fakeroot makes upper/ and work/ owned by root, for --fakeroot runs.
	Fakeroot bool
	// Force adds to a signed SIF.
	Force bool
}

// Create makes the overlay image o asks for.
func Create(o Options) error {
	if o.Size < MinSize {
		return fmt.Errorf("overlay image size %d MiB: must be at least %d MiB", o.Size, MinSize)
	}
	for _, d := range o.Dirs {
		if !filepath.IsAbs(d) || strings.Contains("/"+d+"/", "/../") {
			return fmt.Errorf("--create-dir %s: must be an absolute path without ..", d)
		}
	}
	mkfs, err := exec.LookPath("mkfs.ext3")
	if err != nil {
		if mkfs, err = exec.LookPath("/usr/sbin/mkfs.ext3"); err != nil {
			return errors.New("mkfs.ext3 not found: install e2fsprogs")
		}
	}
	var sf *sifedit.File
	switch fi, err := os.Lstat(o.Path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("overlay image %s: %w", o.Path, err)
	case fi.Mode().IsRegular():
		if sf, err = openSIF(o); err != nil {
			return err
		}
		defer sf.Close()
	default:
		return fmt.Errorf("%s exists and is not a SIF file", o.Path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.Path), "."+filepath.Base(o.Path)+".ext3-")
	if err != nil {
		return fmt.Errorf("creating overlay image: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size := int64(o.Size) << 20
	if o.Sparse {
		err = tmp.Truncate(size)
	} else if err = unix.Fallocate(int(tmp.Fd()), 0, 0, size); errors.Is(err, unix.EOPNOTSUPP) {
		err = tmp.Truncate(size) // the filesystem cannot reserve: as sparse
	}
	if err != nil {
		return fmt.Errorf("making overlay image of %d MiB: %w", o.Size, err)
	}
	src, err := os.MkdirTemp("", "launch-overlay-")
	if err != nil {
		return fmt.Errorf("creating overlay layout: %w", err)
	}
	defer os.RemoveAll(src)
	for _, d := range append([]string{"/upper", "/work"}, prefixed(o.Dirs)...) {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			return fmt.Errorf("creating overlay layout: %w", err)
		}
	}
	if err := os.Chmod(src, 0o755); err != nil {
		return err
	}
	args := []string{"-q", "-F", "-d", src}
	if !o.Sparse {
		args = append(args, "-E", "nodiscard") // discarding would punch the space out again
	}
	cmd := exec.Command(mkfs, append(args, tmp.Name())...)
	if o.Fakeroot && os.Getuid() != 0 {
		// mkfs -d copies the owners it sees: in a namespace where the
		// user is root, root.
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext3 -d: %v: %s", err, msg.OneLine(string(out)))
	}
	if sf == nil {
		if err := os.Link(tmp.Name(), o.Path); err != nil {
			return fmt.Errorf("creating overlay image %s: %w", o.Path, err)
		}
		return nil
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return err
	}
	return sf.AddPartition(tmp, sif.FsExt3, sif.PartOverlay, "")
}

// openSIF opens the existing o.Path to add an overlay partition to it.
func openSIF(o Options) (*sifedit.File, error) {
	sf, err := sifedit.Open(o.Path)
	if err != nil {
		if f, e := os.Open(o.Path); e == nil {
			isSIF := sifedit.IsSIF(f)
			f.Close()
			if !isSIF {
				return nil, fmt.Errorf("%s exists and is not a SIF file (an overlay image is made only as a new file, or added to a SIF)", o.Path)
			}
		}
		return nil, err
	}
	if err := sf.CheckUnsigned(o.Force); err != nil {
		sf.Close()
		return nil, err
	}
	if ds, err := sf.GetDescriptors(sif.WithPartitionType(sif.PartOverlay)); err == nil && len(ds) > 0 {
		sf.Close()
		id := strconv.Itoa(int(ds[0].ID()))
		return nil, fmt.Errorf("SIF file %s has an overlay partition already (descriptor %s): delete it first with 'launch sif del %s %s'", o.Path, id, id, o.Path)
	}
	return sf, nil
}

// prefixed puts each of dirs below /upper.
func prefixed(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Join("/upper", d))
	}
	return out
}
