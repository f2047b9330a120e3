package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/launch-hpc/launch/internal/msg"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// Options say how to fetch an image.
type Options struct {
	// Arch is the wanted architecture in GOARCH terms, optionally with a
	// variant ("arm64", "arm/v7"); "" means this machine's.
	Arch string
	// Username and Password, when Username is set, authenticate to the
	// registry; otherwise ~/.docker/config.json is used.
	Username, Password string
	// Insecure allows plain-HTTP registries (--nohttps).
	Insecure bool
	// Stored, when set and Username is not, gives the credentials of
	// `launch registry login` for a registry host; ~/.docker/config.json
	// is used for the hosts it has none for.
	Stored func(registry string) (username, password string, ok bool)
	// TmpDir is where an oci-archive is unpacked (removed by Close).
	TmpDir string
	// MaxSize, when above zero, is the most an oci-archive may unpack to
	// (layer.Options.MaxSize).
	MaxSize int64
	// Blobs, when set, keeps registry blobs (a cache).
	Blobs BlobStore
}

// BlobStore keeps blobs by digest. Open returns a reader of the blob with
// digest d, calling fetch to get it when it does not hold a valid copy.
// The reader it returns must yield exactly the blob (it is verified again
// as it is read).
type BlobStore interface {
	Open(ctx context.Context, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) (io.ReadCloser, error)
}

// Image is an opened image, ready to be read.
type Image struct {
	// Source is where it came from.
	Source Source
	// Digest is the digest of its manifest (zero for docker-archive,
	// whose manifest is not content-addressed).
	Digest v1.Hash
	// RawConfig is the image configuration exactly as stored.
	RawConfig []byte
	// Config is RawConfig parsed.
	Config *ispec.Image
	// Platform is the selected platform, as "os/arch[/variant]".
	Platform string

	img     v1.Image
	opts    Options
	cleanup []func()
}

// Close removes what Open made (an unpacked oci-archive).
func (i *Image) Close() {
	for _, f := range i.cleanup {
		f()
	}
	i.cleanup = nil
}

// Open fetches the manifest and configuration of the image src names for
// the wanted platform. Layers are read later, with Layers.
func Open(ctx context.Context, src Source, o Options) (*Image, error) {
	want, err := parsePlatform(o.Arch)
	if err != nil {
		return nil, err
	}
	im := &Image{Source: src, opts: o}
	switch src.Transport {
	case Docker:
		err = im.openRemote(ctx, want)
	case Layout:
		err = im.openLayout(src.Path, want)
	case Archive:
		err = im.openArchive(ctx, want)
	case DockerArchive:
		err = im.openDockerArchive()
	default:
		err = fmt.Errorf("unknown transport %q (launch reads %s)", src.Transport, Known)
	}
	if err == nil {
		err = im.readConfig(want)
	}
	if err != nil {
		im.Close()
		return nil, err
	}
	return im, nil
}

// readConfig reads and checks the configuration against the manifest and
// the wanted platform.
func (im *Image) readConfig(want v1.Platform) error {
	raw, err := im.img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("%s: reading image configuration: %w", im.Source, err)
	}
	if im.Source.Transport != DockerArchive {
		m, err := im.img.Manifest()
		if err != nil {
			return fmt.Errorf("%s: reading manifest: %w", im.Source, err)
		}
		sum := sha256.Sum256(raw)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != m.Config.Digest.String() {
			return fmt.Errorf("%s: image configuration digest mismatch: got %s, manifest says %s", im.Source, got, m.Config.Digest)
		}
	}
	var cfg ispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: image configuration is not valid JSON: %w", im.Source, err)
	}
	if cfg.OS != "" && cfg.OS != want.OS {
		return fmt.Errorf("%s: image is for %s, not %s", im.Source, cfg.OS, want.OS)
	}
	if cfg.Architecture != "" && cfg.Architecture != want.Architecture {
		return fmt.Errorf("%s: image is for %s/%s, wanted %s (choose another tag, or --arch)",
			im.Source, cfg.OS, cfg.Architecture, platformString(want))
	}
	im.RawConfig, im.Config = raw, &cfg
	if im.Platform == "" {
		im.Platform = platformString(v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
	}
	return nil
}

// openLayout opens the image in an OCI layout directory.
func (im *Image) openLayout(dir string, want v1.Platform) error {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return notFoundf("%s: %s is not an OCI image layout (no index.json)", im.Source, dir)
		}
		return fmt.Errorf("%s: %w", im.Source, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return fmt.Errorf("%s: reading OCI layout %s: %w", im.Source, dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("%s: reading OCI layout %s: %w", im.Source, dir, err)
	}
	var pick *v1.Descriptor
	var tags []string
	for i := range m.Manifests {
		d := &m.Manifests[i]
		t := d.Annotations[ispec.AnnotationRefName]
		if t != "" {
			tags = append(tags, t)
		}
		if im.Source.Ref != "" && t == im.Source.Ref {
			pick = d
		}
	}
	switch {
	case im.Source.Ref != "" && pick == nil:
		return notFoundf("%s: no image tagged %q in %s (tags: %s)", im.Source, im.Source.Ref, dir, listOrNone(tags))
	case pick == nil && len(m.Manifests) == 1:
		pick = &m.Manifests[0]
	case pick == nil && len(m.Manifests) == 0:
		return notFoundf("%s: OCI layout %s holds no image", im.Source, dir)
	case pick == nil:
		return fmt.Errorf("%s: OCI layout %s holds %d images; name one as %s:%s:TAG (tags: %s)",
			im.Source, dir, len(m.Manifests), im.Source.Transport, dir, listOrNone(tags))
	}
	if pick.MediaType.IsIndex() {
		child, err := idx.ImageIndex(pick.Digest)
		if err != nil {
			return fmt.Errorf("%s: reading index %s: %w", im.Source, pick.Digest, err)
		}
		return im.fromIndex(child, want)
	}
	if !pick.MediaType.IsImage() {
		return fmt.Errorf("%s: %s is a %s, not an image", im.Source, pick.Digest, pick.MediaType)
	}
	img, err := idx.Image(pick.Digest)
	if err != nil {
		return fmt.Errorf("%s: reading image %s: %w", im.Source, pick.Digest, err)
	}
	if err := checkManifestDigest(img, pick.Digest); err != nil {
		return fmt.Errorf("%s: %w", im.Source, err)
	}
	im.img, im.Digest = img, pick.Digest
	return nil
}

// checkManifestDigest checks that a manifest read from a file is the one
// its descriptor names.
func checkManifestDigest(img v1.Image, want v1.Hash) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("reading manifest %s: %w", want, err)
	}
	sum := sha256.Sum256(raw)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want.String() {
		return fmt.Errorf("manifest digest mismatch: got %s, want %s", got, want)
	}
	return nil
}

// fromIndex picks the image for want out of a multi-platform index.
func (im *Image) fromIndex(idx v1.ImageIndex, want v1.Platform) error {
	m, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("%s: reading index: %w", im.Source, err)
	}
	d, err := pickPlatform(m.Manifests, want)
	if err != nil {
		return fmt.Errorf("%s: %w", im.Source, err)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return fmt.Errorf("%s: reading image for %s: %w", im.Source, platformString(want), err)
	}
	if im.Source.Transport != Docker {
		if err := checkManifestDigest(img, d.Digest); err != nil {
			return fmt.Errorf("%s: %w", im.Source, err)
		}
	}
	im.img, im.Digest = img, d.Digest
	im.Platform = platformString(*d.Platform)
	return nil
}

// pickPlatform chooses the manifest for want. A wanted variant must match;
// without one, the first manifest of the right OS and architecture wins.
func pickPlatform(ms []v1.Descriptor, want v1.Platform) (*v1.Descriptor, error) {
	var have []string
	for i := range ms {
		p := ms[i].Platform
		if p == nil || !ms[i].MediaType.IsImage() {
			continue
		}
		if p.OS == "unknown" { // attestation manifests
			continue
		}
		have = append(have, platformString(*p))
		if p.OS == want.OS && p.Architecture == want.Architecture &&
			(want.Variant == "" || p.Variant == want.Variant) {
			return &ms[i], nil
		}
	}
	sort.Strings(have)
	return nil, fmt.Errorf("no image for %s in this multi-platform index (it has: %s; choose with --arch)",
		platformString(want), listOrNone(have))
}

// openDockerArchive opens a `docker save` archive.
func (im *Image) openDockerArchive() error {
	if err := checkFile(im.Source, im.Source.Path); err != nil {
		return err
	}
	var tag *name.Tag
	if im.Source.Ref != "" {
		t, err := name.NewTag(im.Source.Ref)
		if err != nil {
			return fmt.Errorf("%s: bad tag %q: %w", im.Source, im.Source.Ref, err)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(im.Source.Path, tag)
	if err != nil {
		return fmt.Errorf("%s: reading docker archive %s: %w", im.Source, im.Source.Path, oneLineErr(err))
	}
	mt, err := img.MediaType()
	if err == nil && mt != types.DockerManifestSchema2 && mt != types.OCIManifestSchema1 {
		return fmt.Errorf("%s: unexpected manifest type %s", im.Source, mt)
	}
	im.img = img
	return nil
}

// openArchive unpacks an oci-archive into a temporary directory and opens
// it as a layout.
func (im *Image) openArchive(ctx context.Context, want v1.Platform) error {
	if err := checkFile(im.Source, im.Source.Path); err != nil {
		return err
	}
	tmp, err := tmptree.MkdirTemp(im.opts.TmpDir, tmptree.KindOCIArchive)
	if err != nil {
		return fmt.Errorf("%s: %w", im.Source, err)
	}
	im.cleanup = append(im.cleanup, func() {
		if err := tmp.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "WARNING: %v\n", err)
		}
	})
	dir := tmp.Path
	if err := untar(ctx, im.Source.Path, dir, im.opts.MaxSize); err != nil {
		return fmt.Errorf("%s: unpacking %s: %w", im.Source, im.Source.Path, err)
	}
	return im.openLayout(dir, want)
}

func checkFile(src Source, p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return notFoundf("%s: %s does not exist", src, p)
	case err != nil:
		return fmt.Errorf("%s: %w", src, err)
	case fi.IsDir():
		return fmt.Errorf("%s: %s is a directory, not an archive file", src, p)
	}
	return nil
}

// parsePlatform turns "", "amd64", "arm64/v8" or "linux/arm/v7" into a
// platform; "" is this machine's.
func parsePlatform(s string) (v1.Platform, error) {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if s == "" {
		return p, nil
	}
	parts := strings.Split(strings.TrimPrefix(s, "linux/"), "/")
	if len(parts) > 2 || parts[0] == "" {
		return p, fmt.Errorf("--arch %q: want ARCH or ARCH/VARIANT (amd64, arm64, arm/v7, ppc64le …)", s)
	}
	p.Architecture = parts[0]
	if len(parts) == 2 {
		p.Variant = parts[1]
	}
	return p, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// oneLineErr squeezes a multi-line library error into one line.
func oneLineErr(err error) error {
	s := err.Error()
	if !strings.ContainsAny(s, "\n\r") {
		return err
	}
	return errors.New(msg.OneLine(s))
}

// Name is a short name for the image, as `launch pull` names its output
// (repository base name and tag, like Apptainer: alpine_3.20).
func (s Source) Name() string {
	base, tag := s.Ref, ""
	if s.Transport != Docker {
		base = strings.TrimSuffix(filepath.Base(s.Path), filepath.Ext(s.Path))
		tag = s.Ref
	} else {
		if i := strings.Index(base, "@"); i >= 0 {
			d := base[i+1:]
			base = base[:i]
			if j := strings.IndexByte(d, ':'); j >= 0 {
				d = d[j+1:]
			}
			if len(d) > 12 {
				d = d[:12]
			}
			tag = d
		}
		if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
			if tag == "" {
				tag = base[i+1:]
			}
			base = base[:i]
		}
		if tag == "" {
			tag = "latest"
		}
		base = base[strings.LastIndexByte(base, '/')+1:]
	}
	if tag != "" {
		return base + "_" + tag
	}
	return base
}
