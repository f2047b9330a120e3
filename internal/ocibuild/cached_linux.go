package ocibuild

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/oci"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// CachedSIF makes sure the cache holds the SIF of the image src names and
// returns its path, for `launch exec|run|shell docker://…` (Apptainer runs
// such sources from its cache too). The cache key is the manifest digest:
//
//   - a reference pinned by digest (docker://REPO@sha256:…) whose SIF is
//     cached is answered from the cache alone, without a word to the
//     registry;
//   - a tag is resolved to its manifest digest by the registry (one
//     manifest request, as Apptainer does), and a cached SIF of that
//     digest is used; only a new digest fetches layers;
//   - oci: and oci-archive: images are keyed by their manifest's digest
//     the same way (nothing is fetched).
//
// docker-archive: has no manifest digest to key on: it is refused with a
// line saying how to convert it first.
func CachedSIF(ctx context.Context, src oci.Source, o OCIOptions) (string, error) {
	if o.Cache == nil {
		return "", errors.New("running an image from " + src.String() + " needs the cache, which is disabled (LAUNCH_DISABLE_CACHE): convert it first with launch pull OUT.sif " + src.String())
	}
	if src.Transport == oci.DockerArchive {
		return "", fmt.Errorf("%s: running a docker-archive: directly is not supported yet (it has no manifest digest to cache it by): convert it first with launch pull OUT.sif %s", src, src)
	}
	if d, ok := pinned(src); ok {
		if p, ok := cachedAlready(ctx, o.Cache, d); ok {
			o.Progress.Step("Using cached SIF %s", p)
			return p, nil
		}
	}
	if o.TmpDir == "" {
		o.TmpDir = build.TmpDir()
	}
	tmptree.Sweep(o.TmpDir)
	o.NoSweep = true
	o.Fetch.TmpDir = o.TmpDir
	o.Fetch.MaxSize = o.MaxUnpacked
	if src.Transport == oci.Docker {
		o.Fetch.Blobs = o.Cache
	}
	o.Progress.Step("Fetching %s", src)
	im, err := oci.Open(ctx, src, o.Fetch)
	if err != nil {
		return "", tooLarge(err, o.MaxUnpacked)
	}
	defer im.Close()
	if im.Digest == (v1.Hash{}) {
		return "", fmt.Errorf("%s: the image has no manifest digest to cache it by: convert it first with launch pull OUT.sif %s", src, src)
	}
	o.Progress.Step("Image %s (%s)", im.Digest, im.Platform)
	f, err := cachedSIF(ctx, im, o)
	if err != nil {
		return "", err
	}
	f.Close()
	return o.Cache.SIFPath(im.Digest), nil
}

// pinned is the digest of a registry reference pinned by digest.
func pinned(src oci.Source) (v1.Hash, bool) {
	if src.Transport != oci.Docker {
		return v1.Hash{}, false
	}
	_, d, ok := strings.Cut(src.Ref, "@")
	if !ok {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(d)
	return h, err == nil
}

// cachedAlready reports whether the cache holds a good SIF for digest d
// (checked against its record, under the entry's lock), and its path.
func cachedAlready(ctx context.Context, c *cache.Cache, d v1.Hash) (string, bool) {
	unlock, err := c.Lock(ctx, cache.KindSIF, d)
	if err != nil {
		return "", false
	}
	defer unlock()
	f, err := c.OpenSIF(d)
	if err != nil || f == nil {
		return "", false
	}
	f.Close()
	return c.SIFPath(d), true
}
