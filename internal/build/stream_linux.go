package build

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Stream is a tree packed from a tar stream (tar2sqfs) rather than from a
// directory on disk: launch pull flattens an image's layers into one.
type Stream interface {
	// TreeView is what the metadata plan reads of the tree.
	TreeView
	// Add puts an entry of the image metadata (BaseLayout's, labels.json,
	// the definition file) into the tree: a file replaces what is at its
	// path, a directory or link is added where nothing is.
	Add(e Entry) error
	// WriteTar writes the whole tree to w as one tar archive (its end
	// included): names relative to the root, numeric owners, no extended
	// attributes. It calls meta, which adds the image metadata (Add), once
	// the tree is complete but for it, and writes what meta added. (The
	// tar writer is the caller's: archive/tar stays out of launch itself.)
	WriteTar(ctx context.Context, w io.Writer, meta func() error) error
}

// LookTar2sqfs returns the path of the tar2sqfs program (configured, or
// the name looked up in PATH), or an error saying it is not there.
func LookTar2sqfs(configured string) (string, error) {
	p, err := exec.LookPath(tool(configured, "tar2sqfs"))
	if err != nil {
		return "", fmt.Errorf("%s not found (install squashfs-tools-ng, or set tools.tar2sqfs in launch.conf)", tool(configured, "tar2sqfs"))
	}
	return p, nil
}

// BuildStream packs the tree s into the SIF o.Out with the tar2sqfs
// program prog: the tree's entries and its metadata are written to
// tar2sqfs's standard input, with no tree on disk. o.Source is not read.
// Like Build, it leaves the finished output or nothing.
func BuildStream(ctx context.Context, o Options, prog string, s Stream) error {
	if err := CheckOut(o.Out, o.Force, false); err != nil {
		return err
	}
	dir, base := filepath.Dir(o.Out), filepath.Base(o.Out)
	sq, err := newTempFile(dir, base+".squashfs", 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Out, err)
	}
	defer sq.discard()
	if o.Source == "" {
		o.Source = o.Origin // for the messages
	}
	var meta *metaPlan
	addMeta := func() error {
		m, err := planMetaOf(o, s, false)
		if err != nil {
			return fmt.Errorf("adding the image metadata to %s: %w", o.Out, err)
		}
		for _, e := range m.entries {
			if err := s.Add(e); err != nil {
				return fmt.Errorf("adding the image metadata to %s: %s: %w", o.Out, e.Path, err)
			}
		}
		meta = m
		return nil
	}
	write := func(ctx context.Context, w io.Writer) error { return s.WriteTar(ctx, w, addMeta) }
	if err := tar2sqfs(ctx, prog, o.Compression, write, sq, o.ToolOutput); err != nil {
		return wrapWrite(ctx, o.Out, "packing the image", err)
	}
	if meta == nil {
		return fmt.Errorf("packing the image: the image metadata was not added")
	}
	return writeSIF(ctx, o, sq, meta)
}

// tar2sqfsArgs are the arguments for packing a tar stream into dst: the
// compression of mksquashfs's default (gzip) unless comp, mksquashfs's
// block size, no extended attributes, a record it cannot read an error.
func tar2sqfsArgs(dst, comp string) []string {
	if comp == "" {
		comp = "gzip"
	}
	return []string{"--quiet", "--force", "--no-skip", "--no-xattr", "--compressor", comp,
		"--block-size", "131072", "--defaults", "uid=0,gid=0,mode=0755", dst}
}

// tar2sqfs packs what write writes into the temporary file out through the
// program prog.
func tar2sqfs(ctx context.Context, prog, comp string, write func(context.Context, io.Writer) error, out *tempFile, verbose io.Writer) error {
	path := out.procPath()
	var extra []*os.File
	if out.named == "" {
		extra = []*os.File{out.f}
		path = "/proc/self/fd/3"
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	var buf bytes.Buffer
	var w io.Writer = &buf
	if verbose != nil {
		w = io.MultiWriter(&buf, verbose)
	}
	cmd := exec.CommandContext(ctx, prog, tar2sqfsArgs(path, comp)...)
	cmd.ExtraFiles = extra
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, w, w
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		err := write(wctx, bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.Close()
		werr <- err
	}()
	err = runTool(cmd)
	pr.Close() // a writer still writing gets EPIPE
	cancel()
	wErr := <-werr
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if wErr != nil && !errors.Is(wErr, os.ErrClosed) && !isPipe(wErr) {
		return wErr // the tree's own error (a layer's digest, ...): tar2sqfs saw the stream cut
	}
	if err == nil && wErr != nil {
		return wErr
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s not found (install squashfs-tools-ng, or set tools.tar2sqfs in launch.conf)", prog)
	}
	out.f.Sync() //nolint:errcheck // only to learn whether the disk is full
	if isFull(err, buf.String()) {
		return errDiskFull
	}
	return fmt.Errorf("%w (%v): %s", ErrTar2sqfs, err, lastLines(buf.String(), 3))
}

// ErrTar2sqfs is wrapped by the error of a tar2sqfs that failed on its own
// (not for a full disk, a signal or a broken stream): its caller may pack
// the tree another way.
var ErrTar2sqfs = errors.New("tar2sqfs failed")

// isPipe reports whether err is a write to a pipe whose reader has gone.
func isPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE)
}
