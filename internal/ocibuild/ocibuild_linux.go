package ocibuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/layer"
	"github.com/launch-hpc/launch/internal/layout"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/progress"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// OCIOptions say how to build a SIF from an OCI image source.
type OCIOptions struct {
	build.Options
	// Fetch are the registry and platform options.
	Fetch oci.Options
	// Cache keeps registry blobs and converted SIFs; nil disables it.
	Cache *cache.Cache
	// TmpDir is where the root filesystem is unpacked ("": $LAUNCH_TMPDIR,
	// else $TMPDIR, else /tmp).
	TmpDir string
	// Progress shows steps and bars (nil: nothing).
	Progress *progress.Reporter
	// MaxUnpacked, when above zero, is the most the image's layers may
	// unpack to, in bytes (launch.conf build.max_unpacked_size).
	MaxUnpacked int64
}

// FromOCI builds the SIF o.Out from the image src names. With a cache, an
// image from a registry is converted once per manifest digest, under the
// cache entry's lock, and copied from the cache afterwards.
func FromOCI(ctx context.Context, src oci.Source, o OCIOptions) error {
	if err := build.CheckOut(o.Out, o.Force, false); err != nil {
		return err
	}
	if o.TmpDir == "" {
		o.TmpDir = build.TmpDir()
	}
	build.SweepStale(o.TmpDir, o.Out, o.Log)
	o.NoSweep = true
	o.Fetch.TmpDir = o.TmpDir
	o.Fetch.MaxSize = o.MaxUnpacked
	useCache := o.Cache != nil && src.Transport == oci.Docker
	if useCache {
		o.Fetch.Blobs = o.Cache
	}
	o.Progress.Step("Fetching %s", src)
	im, err := oci.Open(ctx, src, o.Fetch)
	if err != nil {
		return tooLarge(err, o.MaxUnpacked)
	}
	defer im.Close()
	if im.Digest != (v1.Hash{}) {
		o.Progress.Step("Image %s (%s)", im.Digest, im.Platform)
	}
	if !useCache {
		return convert(ctx, im, o)
	}
	f, err := cachedSIF(ctx, im, o)
	if err != nil {
		return err
	}
	defer f.Close()
	o.Progress.Step("Writing %s", o.Out)
	return build.Install(ctx, f, o.Out, o.Force)
}

// cachedSIF returns the cache's SIF of im, converting im into the cache
// first when it has none (under the entry's lock). The open file stays
// readable whatever happens to the entry afterwards.
func cachedSIF(ctx context.Context, im *oci.Image, o OCIOptions) (*os.File, error) {
	p := o.Cache.SIFPath(im.Digest)
	unlock, err := o.Cache.Lock(ctx, cache.KindSIF, im.Digest)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The cached SIF is checked against the digest recorded when it was
	// made; one that does not match is removed (with a warning) and made
	// again.
	f, err := o.Cache.OpenSIF(im.Digest)
	if err != nil {
		return nil, err
	}
	if f != nil {
		o.Progress.Step("Using cached SIF %s", p)
		return f, nil
	}
	co := o
	co.Out, co.Force = p, true
	if err := convert(ctx, im, co); err != nil {
		return nil, err
	}
	if f, err = o.Cache.AddSIF(im.Digest); err != nil {
		return nil, fmt.Errorf("reading converted image %s: %w", p, err)
	}
	return f, nil
}

// convert makes o.Out from im: streamed into tar2sqfs (stream_linux.go)
// when it is there and the layers allow, else by unpacking the layers into
// a temporary tree (convertTree).
func convert(ctx context.Context, im *oci.Image, o OCIOptions) error {
	if done, err := tryStream(ctx, im, o); done {
		return err
	}
	return convertTree(ctx, im, o)
}

// convertTree unpacks im's layers into a temporary tree, adds the Apptainer
// metadata for its configuration and packs it into o.Out.
func convertTree(ctx context.Context, im *oci.Image, o OCIOptions) error {
	tmp, err := tmptree.MkdirTemp(o.TmpDir, tmptree.KindBuild)
	if err != nil {
		return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
	}
	defer tmp.Remove()
	root := filepath.Join(tmp.Path, "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", root, err)
	}
	layers, err := im.Layers()
	if err != nil {
		return err
	}
	var total layer.Stats
	for _, l := range layers {
		if err := applyLayer(ctx, root, l, len(layers), o, &total); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("building %s: interrupted, temporary files removed", o.Out)
			}
			return err
		}
	}
	if total.Devices > 0 {
		o.Log.Verbosef("left out %d device node(s) (an unprivileged image cannot have them)", total.Devices)
	}
	if err := writeOCIMeta(root, im, o); err != nil {
		return err
	}
	o.Source, o.Origin = root, im.Source.String()
	o.Header = build.SourceHeader(o.Origin)
	o.Arch = im.Config.Architecture
	o.JSON = []build.JSONObject{
		{Name: OCIConfigObject, Data: configSection(im.RawConfig)},
		{Name: OCIImageConfigObject, Data: im.RawConfig},
	}
	o.Progress.Step("Packing the root filesystem into SquashFS")
	o.Options.NoSteps = true // said above, in terms of the image
	return build.Build(ctx, o.Options)
}

// applyLayer applies one layer to root, reading it to its end so that its
// digests are checked, and adds what it did to total, whose Bytes count
// against o.MaxUnpacked.
func applyLayer(ctx context.Context, root string, l oci.Layer, n int, o OCIOptions, total *layer.Stats) error {
	rc, err := openLayer(ctx, l, n, o)
	if err != nil {
		return err
	}
	lo := layer.Options{KeepOwner: os.Geteuid() == 0}
	if o.MaxUnpacked > 0 {
		lo.MaxSize = max(o.MaxUnpacked-total.Bytes, 1)
	}
	st, err := layer.Apply(root, rc, lo)
	if err == nil {
		_, err = io.Copy(io.Discard, rc) // the rest, so that the digests are checked
	}
	rc.Close()
	if err != nil {
		return layerErr(l, layerID(l), err, o)
	}
	total.Devices += st.Devices
	total.Bytes += st.Bytes
	return nil
}

// layerErr is err, from applying the layer l (id: its digest), as a user
// sees it.
func layerErr(l oci.Layer, id v1.Hash, err error, o OCIOptions) error {
	{
		if errors.Is(err, layer.ErrHostile) {
			return fmt.Errorf("%s: layer %d (%s) is refused: %w", l.Source(), l.Index+1, short(id), err)
		}
		if errors.Is(err, layer.ErrTooLarge) {
			return tooLarge(fmt.Errorf("%s: layer %d (%s): %w", l.Source(), l.Index+1, short(id), err), o.MaxUnpacked)
		}
		if strings.Contains(err.Error(), l.Source().String()) {
			return err
		}
		return fmt.Errorf("%s: layer %d (%s): %w", l.Source(), l.Index+1, short(id), err)
	}
}

// tooLarge adds to err, when it is the unpacked size passing limit, which
// setting set the limit.
func tooLarge(err error, limit int64) error {
	if !errors.Is(err, layer.ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: the image unpacks to more than %s, the limit set by build.max_unpacked_size in launch.conf",
		err, progress.Size(limit))
}

func short(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

// writeOCIMeta writes the Apptainer metadata for im's configuration into
// root: environment script, runscript, labels, and the working directory.
// Every path is resolved inside root, so an image whose /.singularity.d is
// a symlink cannot make it write elsewhere.
func writeOCIMeta(root string, im *oci.Image, o OCIOptions) error {
	c := im.Config.Config
	files, err := ociMetaFiles(im, o, true)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writeInRoot(root, f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("writing %s into the image: %w", f.path, inRoot(err, root))
		}
	}
	if c.WorkingDir != "" {
		rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer rf.Close()
		d, err := securejoin.MkdirAllHandle(rf, c.WorkingDir, 0o755)
		if err != nil {
			return fmt.Errorf("making the working directory %s in the image: %w", c.WorkingDir, inRoot(err, root))
		}
		d.Close()
	}
	return nil
}

// metaFile is a file of the Apptainer metadata for an image's configuration.
type metaFile struct {
	path string
	data []byte
	mode uint32
}

// ociMetaFiles are the metadata files for im's configuration: environment
// script, runscript, labels; with warn, the environment variables left out
// are said.
func ociMetaFiles(im *oci.Image, o OCIOptions, warn bool) ([]metaFile, error) {
	c := im.Config.Config
	env, bad := envScript(c.Env)
	if len(bad) > 0 && warn {
		o.Log.Warnf("image environment variables with names a shell cannot set were left out: %s", strings.Join(bad, ", "))
	}
	labels, err := labelsJSON(c.Labels)
	if err != nil {
		return nil, err
	}
	return []metaFile{
		{layout.OCIEnv, []byte(env), 0o755},
		{layout.Runscript, []byte(runscript(c)), 0o755},
		{layout.Labels, labels, 0o644},
	}, nil
}

// inRoot is err with the temporary root's path left out of the paths it
// names, so that they are paths in the image.
func inRoot(err error, root string) error {
	if !strings.Contains(err.Error(), root) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), root, ""))
}

// writeInRoot is build.WriteInRoot (one place for writing into an image
// tree without following its links).
func writeInRoot(root, rel string, data []byte, mode uint32) error {
	return build.WriteInRoot(root, rel, data, mode)
}
