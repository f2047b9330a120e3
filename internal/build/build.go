// Package build makes images: it packs a directory tree into a SquashFS
// file with mksquashfs and assembles a SIF around it (Build), and unpacks a
// SIF or SquashFS image into a directory with unsquashfs (Sandbox). Whatever
// happens (a failed tool, a full disk, SIGINT/SIGTERM) it leaves either the
// finished output or nothing at all; outputs are written under temporary
// names next to their destination and renamed into place. It never runs
// anything from the image and never mounts.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/launch-hpc/launch/internal/fakeroot"
	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// Options says what to build and how.
type Options struct {
	// Source is the directory tree to pack (Build) or the image to unpack
	// (Sandbox).
	Source string
	// Out is the SIF file (Build) or directory (Sandbox) to create.
	Out string
	// Force allows replacing an existing Out.
	Force bool
	// Arch is the SIF partition's architecture; "" means runtime.GOARCH.
	Arch string
	// Log receives one short line per step.
	Log *msg.Logger
	// JSON are data objects to add to the SIF (Build only).
	JSON []JSONObject
	// ToolOutput, when non-nil, receives the output of mksquashfs and
	// unsquashfs as they run (for -v); otherwise it is shown only in
	// errors.
	ToolOutput io.Writer
	// Compression is the SquashFS compression (mksquashfs -comp); ""
	// leaves mksquashfs's default (gzip).
	Compression string
	// Mksquashfs and Unsquashfs are the programs to run (launch.conf
	// [tools]); "" means the name looked up in PATH.
	Mksquashfs, Unsquashfs string
	// Tar2sqfs is the tar2sqfs program of BuildStream's callers ("":
	// looked up in PATH).
	Tar2sqfs string

	// KeepPrivileged keeps, when unpacking an image (Sandbox, and the
	// unpacking half of FromImage), its set-uid/set-gid bits, device nodes
	// and extended attributes other than user.* (file capabilities), which
	// are dropped otherwise: an image is anybody's.
	KeepPrivileged bool

	// NoSteps leaves out the step lines (for callers that say them
	// their own way).
	NoSteps bool
	// Header is the definition header of the build, for the
	// org.label-schema.usage.singularity.deffile.* labels and, when the
	// tree has no definition file, the one stored; nil means the header
	// Apptainer gives a build from Origin (SourceHeader).
	Header []HeaderField
	// Origin is the source as the user named it ("": Source).
	Origin string
	// Now is the build time of the labels (zero: time.Now).
	Now time.Time

	// Fakeroot, when non-nil (maps with subordinate ranges), packs as
	// root in the user's fakeroot namespace (Build only): the tree of a
	// --fakeroot build as its %post left it, 0 inside for the user's
	// files and the in-namespace ids of the subordinate ones, as a root
	// build would record them (fakeroot_linux.go).
	Fakeroot *fakeroot.Maps

	// NoSweep leaves out the removal of what killed builds left behind
	// (SweepStale), for callers that did it already.
	NoSweep bool
}

// tool returns name unless the caller configured another program.
func tool(configured, name string) string {
	if configured != "" {
		return configured
	}
	return name
}

// Build packs the directory o.Source into the SIF file o.Out. A
// cancelled ctx (a signal) stops the build and removes every temporary file.
func Build(ctx context.Context, o Options) error {
	if err := checkSource(o.Source, o.Fakeroot == nil); err != nil {
		return err
	}
	dir, base := filepath.Dir(o.Out), filepath.Base(o.Out)
	if err := CheckOut(o.Out, o.Force, false); err != nil {
		return err
	}
	if !o.NoSweep {
		SweepStale(TmpDir(), o.Out, o.Log)
	}
	sq, err := newTempFile(dir, base+".squashfs", 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Out, err)
	}
	defer sq.discard()

	if o.Origin == "" {
		o.Origin = o.Source
	}
	meta, err := planMeta(o)
	if err != nil {
		return fmt.Errorf("adding the image metadata to %s: %w", o.Out, err)
	}
	defer meta.remove()

	if !o.NoSteps {
		o.Log.Infof("Packing %s into SquashFS", o.Source)
	}
	if err := mksquashfs(ctx, tool(o.Mksquashfs, "mksquashfs"), o.Source, o.Compression, meta, sq, o.ToolOutput, o.Fakeroot); err != nil {
		return wrapWrite(ctx, o.Out, "packing "+o.Source, err)
	}
	meta.remove()
	return writeSIF(ctx, o, sq, meta)
}

// writeSIF writes the SIF o.Out around the packed SquashFS sq.
func writeSIF(ctx context.Context, o Options, sq *tempFile, meta *metaPlan) error {
	dir, base := filepath.Dir(o.Out), filepath.Base(o.Out)
	if !o.NoSteps {
		o.Log.Infof("Writing SIF %s", o.Out)
	}
	out, err := newTempFile(dir, base, 0o755)
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Out, err)
	}
	defer out.discard()
	if _, err := sq.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reading packed SquashFS: %w", err)
	}
	arch := o.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	json := append([]JSONObject{{Name: InspectMetadataObject, Data: meta.metadata}}, o.JSON...)
	parts := Parts{Squash: ctxReader{ctx, sq.f}, Arch: arch, Deffile: meta.deffile, JSON: json}
	if err := Assemble(out.f, parts); err != nil {
		return wrapWrite(ctx, o.Out, "writing "+o.Out, err)
	}
	sq.discard() // free its space before the rename
	if err := out.commit(o.Out, o.Force); err != nil {
		if errors.Is(err, errExists) {
			return fmt.Errorf("%s already exists, use --force to replace it", o.Out)
		}
		return wrapWrite(ctx, o.Out, "writing "+o.Out, err)
	}
	o.Log.Verbosef("Built %s from %s (%s)", o.Out, o.Source, arch)
	return nil
}

// CheckOut refuses an existing out unless force, and an out of the wrong
// kind (a directory for a SIF) even with force.
func CheckOut(out string, force, wantDir bool) error {
	fi, err := os.Lstat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("checking %s: %w", out, bare(err))
	case !force:
		return fmt.Errorf("%s already exists, use --force to replace it", out)
	case fi.IsDir() && !wantDir:
		return fmt.Errorf("%s is a directory, not replacing it with a SIF file", out)
	}
	return nil
}

// bare is err without the path an *fs.PathError repeats (the message
// names it already).
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// wrapWrite turns err into the error a user sees: interrupted, disk full,
// or err wrapped with what was being done.
func wrapWrite(ctx context.Context, out, doing string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("building %s: interrupted, temporary files removed", out)
	case errors.Is(err, errDiskFull) || isFull(err, ""):
		return fmt.Errorf("writing %s: %w", out, errDiskFull)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// ctxReader is a reader that stops when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Install copies the complete SIF open in src to out, as Build writes its
// output: under no name (or a hidden one) until complete, then linked into
// place; an existing out is replaced only with force.
func Install(ctx context.Context, src *os.File, out string, force bool) error {
	if err := CheckOut(out, force, false); err != nil {
		return err
	}
	dir, base := filepath.Dir(out), filepath.Base(out)
	tf, err := newTempFile(dir, base, 0o755)
	if err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	defer tf.discard()
	if _, err := io.Copy(tf.f, ctxReader{ctx, src}); err != nil {
		return wrapWrite(ctx, out, "writing "+out, err)
	}
	if err := tf.commit(out, force); err != nil {
		if errors.Is(err, errExists) {
			return fmt.Errorf("%s already exists, use --force to replace it", out)
		}
		return wrapWrite(ctx, out, "writing "+out, err)
	}
	return nil
}

// SweepStale removes the temporary trees and files that killed builds and
// pulls of this user on this host left in tmpDir and beside out, and that
// no running launch holds (internal/tmptree); it says so under -v. Every
// build and pull calls it first: it costs a read of the two directories.
func SweepStale(tmpDir, out string, log *msg.Logger) {
	for _, n := range tmptree.Sweep(tmpDir) {
		log.Verbosef("Removed %s, left behind by a killed launch", filepath.Join(tmpDir, n))
	}
	dir := filepath.Dir(out)
	for _, n := range tmptree.SweepHidden(dir) {
		log.Verbosef("Removed %s, left behind by a killed launch", filepath.Join(dir, n))
	}
}

// TmpDir is where temporary trees go: $LAUNCH_TMPDIR, else the system's.
func TmpDir() string {
	if d := os.Getenv("LAUNCH_TMPDIR"); d != "" {
		return d
	}
	return os.TempDir()
}
