package oci

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layer is one layer of an image, bottom first.
type Layer struct {
	// Index counts from 0 at the bottom.
	Index int
	// Digest is the digest of the blob as stored (compressed); zero for
	// docker-archive.
	Digest v1.Hash
	// DiffID is the digest of the uncompressed tar, from the configuration.
	DiffID v1.Hash
	// Size is the stored size in bytes (-1 when unknown).
	Size int64

	im *Image
	l  v1.Layer
}

// Layers lists the image's layers, bottom first.
func (im *Image) Layers() ([]Layer, error) {
	diffIDs := im.Config.RootFS.DiffIDs
	var out []Layer
	if im.Source.Transport == DockerArchive {
		// Its layers are looked up by DiffID: their compressed digests
		// would be computed by compressing them.
		for i, d := range diffIDs {
			h, err := v1.NewHash(d.String())
			if err != nil {
				return nil, fmt.Errorf("%s: bad diff_id %q: %w", im.Source, d, err)
			}
			l, err := im.img.LayerByDiffID(h)
			if err != nil {
				return nil, fmt.Errorf("%s: layer %d (%s): %w", im.Source, i+1, h, oneLineErr(err))
			}
			out = append(out, Layer{Index: i, DiffID: h, Size: -1, im: im, l: l})
		}
		return out, nil
	}
	m, err := im.img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: reading manifest: %w", im.Source, err)
	}
	if len(m.Layers) != len(diffIDs) {
		return nil, fmt.Errorf("%s: manifest has %d layers, configuration %d diff_ids", im.Source, len(m.Layers), len(diffIDs))
	}
	for i, d := range m.Layers {
		if d.MediaType.IsDistributable() == false && d.URLs != nil {
			return nil, fmt.Errorf("%s: layer %d is a non-distributable (foreign) layer, not supported", im.Source, i+1)
		}
		l, err := im.img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d (%s): %w", im.Source, i+1, d.Digest, oneLineErr(err))
		}
		h, err := v1.NewHash(diffIDs[i].String())
		if err != nil {
			return nil, fmt.Errorf("%s: bad diff_id %q: %w", im.Source, diffIDs[i], err)
		}
		out = append(out, Layer{Index: i, Digest: d.Digest, DiffID: h, Size: d.Size, im: im, l: l})
	}
	return out, nil
}

// Open returns the layer's uncompressed tar stream. Reading it to the end
// checks the stored blob against Digest and the tar against DiffID; a
// mismatch is returned as the error at the end. count, when set, is told
// how many stored bytes were read.
func (l Layer) Open(ctx context.Context, count func(int64)) (io.ReadCloser, error) {
	var stored io.ReadCloser
	var err error
	what := fmt.Sprintf("%s: layer %d", l.im.Source, l.Index+1)
	if l.im.Source.Transport == DockerArchive {
		stored, err = l.l.Uncompressed()
	} else {
		fetch := func() (io.ReadCloser, error) { return l.l.Compressed() }
		if l.im.opts.Blobs != nil && l.im.Source.Transport == Docker {
			stored, err = l.im.opts.Blobs.Open(ctx, l.Digest, l.Size, fetch)
		} else {
			stored, err = fetch()
		}
	}
	if err != nil {
		if l.im.Source.Transport == Docker {
			ref, perr := ParseReference(l.im.Source.Ref, l.im.opts.Insecure)
			if perr == nil {
				return nil, fmt.Errorf("layer %d: %w", l.Index+1, remoteErr(l.im.Source, ref, err))
			}
		}
		return nil, fmt.Errorf("%s: %w", what, oneLineErr(err))
	}
	var r io.Reader = &ctxReader{ctx: ctx, r: stored, count: count}
	var sv *verifier
	if l.Digest != (v1.Hash{}) {
		if v, ok := newVerifier(r, l.Digest, what+" blob").(*verifier); ok {
			sv, r = v, v
		}
	}
	un, err := decompress(r)
	if err != nil {
		stored.Close()
		if sv != nil {
			if derr := sv.drain(); derr != nil {
				return nil, derr
			}
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &layerReader{Reader: newVerifier(un, l.DiffID, what+" (uncompressed)"), stored: sv, closers: []io.Closer{un, stored}}, nil
}

// layerReader is a layer's uncompressed stream. When decompressing fails,
// the stored blob is read to its end: if its digest is wrong, that is the
// error reported (corrupt data), not the decompressor's complaint.
type layerReader struct {
	io.Reader
	stored  *verifier
	closers []io.Closer
}

func (r *layerReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err != nil && err != io.EOF && r.stored != nil && !r.stored.done {
		if derr := r.stored.drain(); derr != nil {
			return n, derr
		}
	}
	return n, err
}

func (r *layerReader) Close() error {
	for _, c := range r.closers {
		c.Close()
	}
	return nil
}

// decompress sniffs gzip or zstd and returns the uncompressed stream (or r
// itself for a plain tar).
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading gzip data: %w", err)
		}
		return z, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading zstd data: %w", err)
		}
		return z.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// verifier hashes what is read and fails at EOF when the digest differs.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	what string
	done bool
}

func newVerifier(r io.Reader, want v1.Hash, what string) io.Reader {
	if want.Algorithm != "sha256" {
		return r
	}
	return &verifier{r: r, h: sha256.New(), want: want, what: what}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF && !v.done {
		v.done = true
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("%s: digest mismatch: got sha256:%s, want %s (corrupt or tampered data)", v.what, got, v.want)
		}
	}
	if err != nil && err != io.EOF {
		if strings.Contains(err.Error(), "error verifying") { // go-containerregistry's own check
			return n, fmt.Errorf("%s: digest mismatch: the data read is not %s (corrupt or tampered data)", v.what, v.want)
		}
		return n, fmt.Errorf("%s: %w", v.what, oneLineErr(err))
	}
	return n, err
}

// drain reads the rest of the stream and returns its error, if any (a
// digest mismatch, or the reason the stored data could not be read).
func (v *verifier) drain() error {
	_, err := io.Copy(io.Discard, v)
	return err
}

// ctxReader stops reading when ctx is cancelled and counts bytes.
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	count func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if c.count != nil && n > 0 {
		c.count(int64(n))
	}
	return n, err
}

// Source is the source of the image the layer belongs to.
func (l Layer) Source() Source { return l.im.Source }
