package ocibuild

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/layer"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/progress"
)

// tryStream makes o.Out from im with no temporary tree: the layers are read
// once to work out what the flattened tree holds (layer.Tree, Apply's rules
// entry by entry), then again to stream the content that tree keeps, with
// the metadata, into tar2sqfs. done is false, with -v saying why, when
// tar2sqfs is missing or the layers hold something only a tree on disk
// reproduces exactly (layer.ErrNotStreamable): the caller then extracts.
func tryStream(ctx context.Context, im *oci.Image, o OCIOptions) (done bool, err error) {
	prog, err := build.LookTar2sqfs(o.Tar2sqfs)
	if err != nil {
		o.Log.Verbosef("%v: extracting the layers to a temporary tree for mksquashfs", err)
		return false, nil
	}
	err = stream(ctx, im, o, prog, false)
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, layer.ErrNotStreamable):
		o.Log.Verbosef("Not streaming the layers (%v): extracting them to a temporary tree for mksquashfs", streamReason(err, layer.ErrNotStreamable))
		return false, nil
	case errors.Is(err, build.ErrTar2sqfs):
		o.Log.Warnf("%v; extracting the layers to a temporary tree for mksquashfs instead", err)
		return false, nil
	}
	return true, err
}

// streamReason is the reason in an error wrapping kind.
func streamReason(err, kind error) string {
	s := err.Error()
	if i := strings.Index(s, kind.Error()+": "); i >= 0 {
		return s[i+len(kind.Error())+2:]
	}
	return s
}

// stream is tryStream once tar2sqfs is found. An image of one layer is
// read once (layer.Tree.StreamLayer) unless twice, or that asks to read it
// again (layer.ErrRestart).
func stream(ctx context.Context, im *oci.Image, o OCIOptions, prog string, twice bool) error {
	layers, err := im.Layers()
	if err != nil {
		return err
	}
	umask := uint32(unix.Umask(0))
	unix.Umask(int(umask))
	t := layer.NewTree(layer.TreeOptions{
		KeepOwner: os.Geteuid() == 0,
		Umask:     umask,
		Capture:   func(p string) bool { return strings.HasPrefix(p, layout.Dir[1:]+"/") },
		PathSlack: len(o.TmpDir) + 40,
		Now:       time.Now(),
	})
	s := &treeStream{t: t, im: im, layers: layers, o: o, once: len(layers) == 1 && !twice}
	if !s.once {
		for _, l := range layers {
			if err := scanLayer(ctx, t, l, len(layers), o, &s.total); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("building %s: interrupted, temporary files removed", o.Out)
				}
				return err
			}
		}
		if err := s.scanned(); err != nil {
			return err
		}
	}
	o.Log.Verbosef("Streaming the layers into %s (no temporary tree%s)", prog, map[bool]string{true: ", one read of the layer", false: ""}[s.once])
	o.Origin = im.Source.String()
	o.Header = build.SourceHeader(o.Origin)
	o.Arch = im.Config.Architecture
	o.JSON = []build.JSONObject{
		{Name: OCIConfigObject, Data: configSection(im.RawConfig)},
		{Name: OCIImageConfigObject, Data: im.RawConfig},
	}
	if !s.once {
		o.Progress.Step("Packing the root filesystem into SquashFS")
	}
	o.Options.NoSteps = true
	err = build.BuildStream(ctx, o.Options, prog, s)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("building %s: interrupted, temporary files removed", o.Out)
	case errors.Is(err, layer.ErrRestart) && s.once:
		o.Log.Verbosef("Reading the layer again (%s)", streamReason(err, layer.ErrRestart))
		return stream(ctx, im, o, prog, true)
	case err == nil:
		_, _ = ociMetaFiles(im, o, true) // its warnings, now that it is done
	}
	return err
}

// scanLayer applies one layer to t, as applyLayer does to a directory.
func scanLayer(ctx context.Context, t *layer.Tree, l oci.Layer, n int, o OCIOptions, total *layer.Stats) error {
	rc, err := openLayer(ctx, l, n, o)
	if err != nil {
		return err
	}
	var maxSize int64
	if o.MaxUnpacked > 0 {
		maxSize = max(o.MaxUnpacked-total.Bytes, 1)
	}
	st, err := t.Layer(l.Index, rc, maxSize)
	if err == nil {
		_, err = io.Copy(io.Discard, rc) // the rest, so that the digests are checked
	}
	rc.Close()
	if err != nil {
		if errors.Is(err, layer.ErrNotStreamable) {
			return err
		}
		return layerErr(l, layerID(l), err, o)
	}
	total.Devices += st.Devices
	total.Bytes += st.Bytes
	return nil
}

// openLayer opens layer l of n for reading, saying so with its digest and
// size, its progress bar fed by the read and ended by Close.
func openLayer(ctx context.Context, l oci.Layer, n int, o OCIOptions) (io.ReadCloser, error) {
	label := fmt.Sprintf("Layer %d/%d", l.Index+1, n)
	id := layerID(l)
	if l.Size >= 0 {
		o.Progress.Step("%s %s (%s)", label, short(id), progress.Size(l.Size))
	} else {
		o.Progress.Step("%s %s", label, short(id))
	}
	bar := o.Progress.Bar(label, l.Size)
	rc, err := l.Open(ctx, bar.Add)
	if err != nil {
		return nil, err
	}
	return barCloser{rc, bar.Done}, nil
}

// barCloser ends a progress bar when its reader is closed.
type barCloser struct {
	io.ReadCloser
	done func()
}

func (b barCloser) Close() error { b.done(); return b.ReadCloser.Close() }

// layerID is the digest that names l: its blob's, else its diff ID.
func layerID(l oci.Layer) v1.Hash {
	if l.Digest == (v1.Hash{}) {
		return l.DiffID
	}
	return l.Digest
}

// treeStream is the build.Stream of a layer.Tree: the metadata plan reads
// the tree (only what it captured of /.singularity.d), WriteTar reads the
// layers again for the content of their files.
type treeStream struct {
	t      *layer.Tree
	im     *oci.Image
	layers []oci.Layer
	o      OCIOptions
	once   bool        // the only layer is applied and written in one read, by WriteTar
	total  layer.Stats // what the layers did
}

// scanned finishes the tree once the layers are applied: the devices left
// out, and the metadata for the image's configuration.
func (s *treeStream) scanned() error {
	if s.total.Devices > 0 {
		s.o.Log.Verbosef("left out %d device node(s) (an unprivileged image cannot have them)", s.total.Devices)
	}
	files, err := ociMetaFiles(s.im, s.o, false)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := s.t.WriteFile(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("writing %s into the image: %w", f.path, err)
		}
	}
	if wd := s.im.Config.Config.WorkingDir; wd != "" {
		if err := s.t.Mkdir(path.Clean("/"+wd), 0o755, false); err != nil {
			return fmt.Errorf("making the working directory %s in the image: %w", wd, err)
		}
	}
	return nil
}

// streamLayer applies the only layer and writes it to tw in one read.
func (s *treeStream) streamLayer(ctx context.Context, tw *tar.Writer, buf []byte) error {
	l, o := s.layers[0], s.o
	id := layerID(l)
	label := "Layer 1/1"
	if l.Size >= 0 {
		o.Progress.Step("%s %s (%s), packing it into SquashFS", label, short(id), progress.Size(l.Size))
	} else {
		o.Progress.Step("%s %s, packing it into SquashFS", label, short(id))
	}
	bar := o.Progress.Bar(label, l.Size)
	rc, err := l.Open(ctx, bar.Add)
	if err != nil {
		return err
	}
	defer rc.Close()
	var maxSize int64
	if o.MaxUnpacked > 0 {
		maxSize = o.MaxUnpacked
	}
	st, err := s.t.StreamLayer(rc, maxSize, tw, buf)
	if err == nil {
		_, err = io.Copy(io.Discard, rc) // the rest, so that the digests are checked
	}
	bar.Done()
	if err != nil {
		if errors.Is(err, layer.ErrNotStreamable) || errors.Is(err, layer.ErrRestart) || isPipe(err) {
			return err
		}
		return layerErr(l, id, err, o)
	}
	s.total = st
	return s.scanned()
}

// isPipe reports whether err is a write to tar2sqfs after it ended.
func isPipe(err error) bool { return errors.Is(err, unix.EPIPE) }

func (s *treeStream) Exists(rel string) (bool, error) {
	ok, _, _, err := s.t.Lookup(rel)
	return ok, err
}

// ReadFile is build.ReadInRoot on the tree: a link (which ReadInRoot would
// follow) or a file whose content was not captured is not streamable.
func (s *treeStream) ReadFile(rel string) ([]byte, error) {
	ok, isDir, ino, err := s.t.Lookup(rel)
	switch {
	case err != nil:
		return nil, err
	case !ok || isDir || ino.Type == tar.TypeFifo:
		return nil, nil
	case ino.Type == tar.TypeSymlink:
		return nil, fmt.Errorf("%w: %s is a symbolic link", layer.ErrNotStreamable, rel)
	case !ino.Captured():
		return nil, fmt.Errorf("%w: %s is a hard link to a file outside %s", layer.ErrNotStreamable, rel, layout.Dir)
	}
	return ino.Data, nil
}

func (s *treeStream) EnvFiles(env map[string]string) error {
	ok, isDir, _, err := s.t.Lookup(layout.EnvDir)
	if err != nil || !ok || !isDir {
		return err
	}
	names, inos, err := s.t.ReadDir(layout.EnvDir)
	if err != nil {
		return err
	}
	for i, n := range names {
		if inos[i] == nil || inos[i].Type != tar.TypeReg || !build.InspectEnv(n) {
			continue
		}
		b, err := s.ReadFile(layout.EnvDir + "/" + n)
		if err != nil {
			return err
		}
		env[layout.EnvDir+"/"+n] = string(b)
	}
	return nil
}

// Apps: an image with SCIF apps is converted through a tree.
func (s *treeStream) Apps() (map[string]build.AppFiles, error) {
	ok, _, _, err := s.t.Lookup(layout.SCIFApps)
	if err != nil || !ok {
		return nil, err
	}
	return nil, fmt.Errorf("%w: the image has SCIF apps (%s)", layer.ErrNotStreamable, layout.SCIFApps)
}

func (s *treeStream) Add(e build.Entry) error {
	switch e.Kind {
	case build.KindDir:
		return s.t.Mkdir(e.Path, e.Mode, true)
	case build.KindLink:
		return s.t.Symlink(e.Path, e.Target)
	}
	return s.t.WriteFile(e.Path, []byte(e.Data), e.Mode)
}

func (s *treeStream) WriteTar(ctx context.Context, w io.Writer, meta func() error) error {
	tw := tar.NewWriter(w)
	if err := s.writeTar(ctx, tw, meta); err != nil {
		return err
	}
	return tw.Close()
}

func (s *treeStream) writeTar(ctx context.Context, tw *tar.Writer, meta func() error) error {
	buf := make([]byte, 1<<20)
	if s.once {
		if err := s.streamLayer(ctx, tw, buf); err != nil {
			return err
		}
	}
	if err := meta(); err != nil {
		return err
	}
	p := s.t.Plan()
	if err := p.WriteStatic(tw); err != nil {
		return err
	}
	for _, l := range s.layers {
		if !p.Needs(l.Index) {
			continue
		}
		if err := s.writeLayer(ctx, p, l, tw, buf); err != nil {
			return err
		}
	}
	return nil
}

func (s *treeStream) writeLayer(ctx context.Context, p *layer.Plan, l oci.Layer, tw *tar.Writer, buf []byte) error {
	rc, err := l.Open(ctx, nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = p.WriteLayer(l.Index, rc, tw, buf)
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return layerErr(l, layerID(l), err, s.o)
	}
	return err
}
