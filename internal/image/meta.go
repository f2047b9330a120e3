package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/launch-hpc/launch/internal/capwriter"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/paths"
)

// Meta is what an image says about itself under /.singularity.d, as
// `launch inspect` shows it. Missing parts are empty.
type Meta struct {
	// Labels are the key/value pairs of labels.json.
	Labels map[string]string
	// Runscript is the content of the runscript.
	Runscript string
	// Environment is the content of every env/*.sh file in name order,
	// each preceded by a "=== /.singularity.d/env/NAME ===" line.
	Environment string
	// EnvFiles maps the path of each env/*.sh file to its content.
	EnvFiles map[string]string
	// Deffile is the definition file the image was built from: the SIF's
	// definition-file descriptor, else /.singularity.d/Singularity.
	Deffile string
	// OCIConfig is the OCI image configuration an image converted from
	// an OCI image keeps in its SIF (data object OCIConfigObject), byte
	// for byte; nil when there is none.
	OCIConfig []byte
}

// OCIConfigObject is the name of the SIF data object holding the whole OCI
// image configuration of an image launch converted from OCI.
const OCIConfigObject = "oci-image-config.json"

// tree reads files of an image's root filesystem.
type tree interface {
	// list returns the paths of the non-directory entries under dir
	// (absolute in the image), sorted.
	list(ctx context.Context, dir string) ([]string, error)
	// read returns a file's content; fs.ErrNotExist when it is not there.
	read(ctx context.Context, p string) ([]byte, error)
}

// ReadMeta reads the metadata of img. A SIF or SquashFS image is read with
// the program unsquashfs (launch.conf tools.unsquashfs; "" for
// "unsquashfs" from PATH). Errors name the image and the file.
func ReadMeta(ctx context.Context, img *Image, unsquashfs string) (*Meta, error) {
	t := treeOf(img, unsquashfs)
	files, err := t.list(ctx, layout.Dir)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of image %s: %w", img.Path, err)
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	get := func(p string) (string, error) {
		if !have[p] {
			return "", nil
		}
		b, err := t.read(ctx, p)
		if err != nil {
			return "", fmt.Errorf("reading %s from image %s: %w", p, img.Path, err)
		}
		return string(b), nil
	}
	m := &Meta{Labels: map[string]string{}, EnvFiles: map[string]string{}}
	labels, err := get(layout.Labels)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(labels) != "" {
		if err := json.Unmarshal([]byte(labels), &m.Labels); err != nil {
			return nil, fmt.Errorf("image %s: %s is not a JSON object of strings: %w", img.Path, layout.Labels, err)
		}
	}
	if m.Runscript, err = get(layout.Runscript); err != nil {
		return nil, err
	}
	var env strings.Builder
	for _, f := range files {
		if path.Dir(f) != layout.EnvDir || !strings.HasSuffix(f, layout.EnvSuffix) {
			continue
		}
		s, err := get(f)
		if err != nil {
			return nil, err
		}
		m.EnvFiles[f] = s
		fmt.Fprintf(&env, "=== %s ===\n%s", f, s)
		if s != "" && !strings.HasSuffix(s, "\n") {
			env.WriteByte('\n')
		}
	}
	m.Environment = env.String()
	if img.Format == FormatSIF {
		if m.Deffile, m.OCIConfig, err = sifObjects(img.Path, OCIConfigObject); err != nil {
			return nil, err
		}
	}
	if m.Deffile == "" {
		if m.Deffile, err = get(layout.Deffile); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// treeOf is the tree of img's root filesystem.
func treeOf(img *Image, unsquashfs string) tree {
	if img.Format == FormatDir {
		return dirTree(img.Path)
	}
	if unsquashfs == "" {
		unsquashfs = "unsquashfs"
	}
	return squashTree{prog: unsquashfs, path: img.Path, offset: img.Offset}
}

// maxMetaObject bounds each metadata file or SIF data object inspect reads
// into memory.
const maxMetaObject = 16 << 20

// sifObjects returns the content of the SIF's definition-file object and of
// its generic JSON object called jsonName ("" and nil when absent). The file
// is opened and checked again (LoadSIF): it may have changed since Open.
func sifObjects(p, jsonName string) (deffile string, js []byte, err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, fmt.Errorf("opening SIF %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("opening SIF %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("image %s is no longer a regular file", p)
	}
	return readSIFObjects(f, p, fi.Size(), jsonName)
}

// readSIFObjects is sifObjects of the SIF file r of size bytes.
func readSIFObjects(r sif.ReadWriter, p string, size int64, jsonName string) (deffile string, js []byte, err error) {
	fimg, err := LoadSIF(r, p, size)
	if err != nil {
		return "", nil, err
	}
	read := func(d sif.Descriptor, what string) ([]byte, error) {
		if d.Size() > maxMetaObject {
			return nil, fmt.Errorf("reading %s of SIF %s: it is %d bytes, more than the %d launch reads",
				what, p, d.Size(), maxMetaObject)
		}
		b, err := d.GetData()
		if err != nil {
			return nil, fmt.Errorf("reading %s of SIF %s: %w", what, p, err)
		}
		return b, nil
	}
	d, err := fimg.GetDescriptor(sif.WithDataType(sif.DataDeffile))
	switch {
	case err == nil:
		b, err := read(d, "the definition file")
		if err != nil {
			return "", nil, err
		}
		deffile = string(b)
	case !errors.Is(err, sif.ErrObjectNotFound) && !errors.Is(err, sif.ErrNoObjects):
		return "", nil, fmt.Errorf("reading definition file of SIF %s: %w", p, err)
	}
	ds, err := fimg.GetDescriptors(sif.WithDataType(sif.DataGenericJSON))
	if err != nil {
		return "", nil, fmt.Errorf("reading SIF %s: %w", p, err)
	}
	for _, d := range ds {
		if d.Name() == jsonName {
			if js, err = read(d, jsonName); err != nil {
				return "", nil, err
			}
			break
		}
	}
	return deffile, js, nil
}

// dirTree is a sandbox directory.
type dirTree string

func (d dirTree) list(_ context.Context, dir string) ([]string, error) {
	var out []string
	root := filepath.Join(string(d), dir)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(string(d), p)
			out = append(out, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// read reads a regular file of at most maxMetaObject bytes: never a FIFO or
// device, which could block or never end.
func (d dirTree) read(_ context.Context, p string) ([]byte, error) {
	f, err := os.OpenFile(filepath.Join(string(d), p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxMetaObject+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaObject {
		return nil, fmt.Errorf("more than the %d bytes launch reads", maxMetaObject)
	}
	return b, nil
}

// squashTree is a SquashFS filesystem at offset in a file, read with the
// unsquashfs program prog.
type squashTree struct {
	prog   string
	path   string
	offset int64
}

func (s squashTree) run(ctx context.Context, args ...string) ([]byte, error) {
	all := append([]string{"-o", strconv.FormatInt(s.offset, 10)}, args...)
	cmd := exec.CommandContext(ctx, s.prog, all...)
	out := &capwriter.Buffer{Max: maxMetaObject, Fail: true}
	errb := &capwriter.Buffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s not found (install squashfs-tools, or set tools.unsquashfs in launch.conf)", s.prog)
		}
		if out.Over {
			return nil, fmt.Errorf("%s %s: more than the %d bytes launch reads", s.prog, strings.Join(args, " "), maxMetaObject)
		}
		return nil, fmt.Errorf("%s %s: %v: %s", s.prog, strings.Join(args, " "), err,
			msg.OneLine(errb.String()))
	}
	return out.Bytes(), nil
}

func (s squashTree) list(ctx context.Context, dir string) ([]string, error) {
	out, err := s.run(ctx, "-lc", "-d", "", s.path, dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, l := range strings.Split(string(out), "\n") {
		if paths.Below(l, dir) {
			files = append(files, l)
		}
	}
	sort.Strings(files)
	return files, nil
}

func (s squashTree) read(ctx context.Context, p string) ([]byte, error) {
	return s.run(ctx, "-cat", s.path, p)
}
