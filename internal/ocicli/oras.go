package ocicli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/launch-hpc/launch/internal/build"
	"github.com/launch-hpc/launch/internal/cache"
	"github.com/launch-hpc/launch/internal/cliutil"
	"github.com/launch-hpc/launch/internal/config"
	"github.com/launch-hpc/launch/internal/oras"
	"github.com/launch-hpc/launch/internal/progress"
	"github.com/launch-hpc/launch/internal/tmptree"
)

// sifHead is what every SIF file starts with at offset 32.
const sifHead = "SIF_MAGIC"

// orasPull fetches the SIF artifact source into out (a SIF file, or with
// f.Sandbox a directory). The SIF goes through the cache as a blob, by the
// layer's digest (as Apptainer caches ORAS images), verified each time it
// is used; without the cache it is fetched into a private temporary
// directory. Either way out appears complete or not at all.
func orasPull(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, source, out string, force bool) error {
	ref, err := oras.ParseRef(source)
	if err != nil {
		return err
	}
	if err := build.CheckOut(out, force, f.Sandbox); err != nil {
		return err
	}
	conf, err := config.LoadSite()
	if err != nil {
		return err
	}
	log := g.Log()
	pr := orasProgress(g)
	tmpDir := build.TmpDir()
	build.SweepStale(tmpDir, out, log)
	a, d, fetch, err := orasResolve(ctx, f, ref, pr, conf.Build.MaxUnpackedBytes())
	if err != nil {
		return err
	}

	var sif *os.File
	var sifPath string
	if f.DisableCache {
		tmp, err := tmptree.MkdirTemp(tmpDir, tmptree.KindBuild)
		if err != nil {
			return fmt.Errorf("%w (set LAUNCH_TMPDIR)", err)
		}
		defer tmp.Remove()
		sifPath = filepath.Join(tmp.Path, "image.sif")
		if sif, err = fetchVerified(sifPath, d, a.Layer.Size, fetch); err != nil {
			return err
		}
	} else {
		dir, err := cache.DefaultDir()
		if err != nil {
			return err
		}
		c, err := cache.Open(dir)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Waiting = func(what string) { pr.Step("Waiting for another launch process to finish %s", what) }
		c.Warn = log.Warnf
		if sif, err = orasCacheOpen(ctx, c, d, a.Layer.Size, fetch); err != nil {
			return err
		}
		sifPath = c.BlobPath(d)
	}
	defer sif.Close()
	if err := checkSIFHead(sif, ref.String()); err != nil {
		return err
	}
	return installPulled(ctx, g, f, conf, pr, sif, sifPath, out, force)
}

// installPulled makes out from a fetched SIF file (sif, open at its start,
// at sifPath): a copy, or with --sandbox its root unpacked there.
func installPulled(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, conf *config.Loaded, pr *progress.Reporter,
	sif *os.File, sifPath, out string, force bool) error {
	if f.Sandbox {
		return build.Sandbox(ctx, build.Options{Source: sifPath, Out: out, Force: force, Log: g.Log(), NoSweep: true,
			KeepPrivileged: f.KeepPrivileged, Unsquashfs: conf.Tools.Unsquashfs, ToolOutput: toolOutput(g)})
	}
	pr.Step("Writing %s", out)
	return build.Install(ctx, sif, out, force)
}

// orasProgress is the progress writer of an oras:// fetch.
func orasProgress(g cliutil.Globals) *progress.Reporter {
	tty := g.Stderr() == os.Stderr && progress.IsTerminal(os.Stderr)
	return progress.New(g.Stderr(), tty, g.Quiet())
}

// orasResolve asks the registry for the SIF artifact ref: its layer's
// digest, and a fetch of the SIF that shows a progress bar and reads no more
// than the manifest says. A SIF larger than max bytes (the site's
// build.max_unpacked_size, as for the layers of a docker:// image; 0: no
// limit) is refused before anything of it is fetched.
func orasResolve(ctx context.Context, f *cliutil.OCIFlags, ref oras.Ref, pr *progress.Reporter, max int64) (*oras.Artifact, v1.Hash, func() (io.ReadCloser, error), error) {
	cr, err := credentials(f, ref.String())
	if err != nil {
		return nil, v1.Hash{}, nil, err
	}
	pr.Step("Fetching %s", ref)
	a, err := oras.Resolve(ctx, ref, oras.Options{Username: cr.user, Password: cr.pass, Stored: cr.stored,
		DockerConfig: true, PlainHTTP: f.NoHTTPS})
	if err != nil {
		return nil, v1.Hash{}, nil, err
	}
	d, err := v1.NewHash(string(a.Layer.Digest))
	if err != nil {
		return nil, v1.Hash{}, nil, fmt.Errorf("%s: the SIF layer's digest %q: %w", ref, a.Layer.Digest, err)
	}
	if max > 0 && a.Layer.Size > max {
		return nil, v1.Hash{}, nil, fmt.Errorf("%s: the SIF is %s, more than the %s this site allows (launch.conf build.max_unpacked_size)",
			ref, progress.Size(a.Layer.Size), progress.Size(max))
	}
	pr.Step("SIF %s (%s)", a.Layer.Digest, progress.Size(a.Layer.Size))
	fetch := func() (io.ReadCloser, error) {
		rc, err := a.Open(ctx)
		if err != nil {
			return nil, err
		}
		bar := pr.Bar("SIF", a.Layer.Size)
		return &sifReader{src: ref.String(), rc: rc, r: io.LimitReader(rc, a.Layer.Size+1), bar: bar}, nil
	}
	return a, d, fetch, nil
}

// orasCacheOpen opens the cached blob d (size bytes), fetching it first
// when the cache does not hold it.
func orasCacheOpen(ctx context.Context, c *cache.Cache, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) (*os.File, error) {
	rc, err := c.Open(ctx, d, size, fetch)
	if err != nil {
		return nil, err
	}
	sif, ok := rc.(*os.File)
	if !ok {
		rc.Close()
		return nil, fmt.Errorf("cache returned no file for %s", d)
	}
	return sif, nil
}

// orasCachedSIF puts the SIF of the oras:// source in the cache (as a blob,
// by digest: a cached one is reused after the registry named its digest)
// and returns its path: for exec, run and shell of an oras:// image.
func orasCachedSIF(ctx context.Context, g cliutil.Globals, f *cliutil.OCIFlags, source string) (string, error) {
	ref, err := oras.ParseRef(source)
	if err != nil {
		return "", err
	}
	conf, err := config.LoadSite()
	if err != nil {
		return "", err
	}
	pr := orasProgress(g)
	a, d, fetch, err := orasResolve(ctx, f, ref, pr, conf.Build.MaxUnpackedBytes())
	if err != nil {
		return "", err
	}
	dir, err := cache.DefaultDir()
	if err != nil {
		return "", err
	}
	c, err := cache.Open(dir)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.Waiting = func(what string) { pr.Step("Waiting for another launch process to finish %s", what) }
	c.Warn = g.Log().Warnf
	sif, err := orasCacheOpen(ctx, c, d, a.Layer.Size, fetch)
	if err != nil {
		return "", err
	}
	defer sif.Close()
	if err := checkSIFHead(sif, ref.String()); err != nil {
		return "", err
	}
	return c.BlobPath(d), nil
}

func toolOutput(g cliutil.Globals) io.Writer {
	if g.Verbose() {
		return g.Stderr()
	}
	return nil
}

// fetchVerified writes the blob d of size bytes from fetch to the new file
// path and returns it opened for reading, or removes it and fails when it
// is not exactly that blob.
func fetchVerified(path string, d v1.Hash, size int64, fetch func() (io.ReadCloser, error)) (*os.File, error) {
	rc, err := fetch()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	switch {
	case err != nil:
		err = fmt.Errorf("fetching %s: %w", d, err)
	case n != size:
		err = fmt.Errorf("SIF %s: got %d bytes, the manifest says %d (truncated or wrong data)", d, n, size)
	case hex.EncodeToString(h.Sum(nil)) != d.Hex:
		err = fmt.Errorf("SIF %s: digest mismatch: got sha256:%x (corrupt or tampered data)", d, h.Sum(nil))
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// sifReader streams the SIF from the registry: it refuses a stream that
// does not start as a SIF file (before any of it is kept), reads at most
// one byte more than the manifest says (the store then sees the size is
// wrong), and moves the progress bar.
type sifReader struct {
	src  string
	rc   io.ReadCloser
	r    io.Reader
	bar  *progress.Bar
	head []byte
	seen int64
}

func (s *sifReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.seen < 64 {
		s.head = append(s.head, p[:min(n, 64-int(s.seen))]...)
		if len(s.head) >= 32+len(sifHead) && string(s.head[32:32+len(sifHead)]) != sifHead {
			return 0, fmt.Errorf("%s: the artifact's layer is not a SIF file", s.src)
		}
	}
	s.seen += int64(n)
	s.bar.Add(int64(n))
	if errors.Is(err, io.EOF) && s.seen < 32+int64(len(sifHead)) {
		return n, fmt.Errorf("%s: the artifact's layer is not a SIF file (%d bytes)", s.src, s.seen)
	}
	return n, err
}

func (s *sifReader) Close() error { s.bar.Done(); return s.rc.Close() }

// checkSIFHead checks that f starts as a SIF file.
func checkSIFHead(f *os.File, src string) error {
	b := make([]byte, len(sifHead))
	if _, err := f.ReadAt(b, 32); err != nil || string(b) != sifHead {
		return fmt.Errorf("%s: the artifact's layer is not a SIF file", src)
	}
	return nil
}
