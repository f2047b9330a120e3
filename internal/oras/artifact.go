package oras

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// maxManifest bounds the manifest read (a SIF artifact's is a few hundred
// bytes).
const maxManifest = 1 << 20

// Artifact is a resolved SIF artifact in a registry.
type Artifact struct {
	// Ref is what was asked for.
	Ref Ref
	// Manifest is the manifest's descriptor.
	Manifest ocispec.Descriptor
	// Layer is the SIF file's descriptor.
	Layer ocispec.Descriptor
	repo  *remote.Repository
}

// Resolve fetches ref's manifest and checks that it is a SIF artifact:
// an image manifest with exactly one layer of a SIF media type (the
// config's media type is not checked, as Apptainer does not: old
// versions wrote others).
func Resolve(ctx context.Context, ref Ref, o Options) (*Artifact, error) {
	repo, err := repository(ref, o)
	if err != nil {
		return nil, err
	}
	repo.MaxMetadataBytes = maxManifest
	desc, rc, err := repo.FetchReference(ctx, ref.Reference())
	if err != nil {
		return nil, registryErr(ref.String(), ref.Host, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return nil, registryErr(ref.String(), ref.Host, err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%s: the manifest is larger than %d bytes: not a SIF artifact", ref, maxManifest)
	}
	if got := digest.FromBytes(b); got != desc.Digest || (ref.Digest != "" && string(got) != ref.Digest) {
		return nil, fmt.Errorf("%s: the registry's manifest has digest %s, not %s (corrupt or tampered data)", ref, got, desc.Digest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: the manifest is not valid JSON: %v", ref, err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest && desc.MediaType != "" {
		return nil, fmt.Errorf("%s is a %s, not a SIF artifact (for an OCI image use docker://)", ref, desc.MediaType)
	}
	if len(m.Layers) != 1 {
		return nil, fmt.Errorf("%s is not a SIF artifact: it has %d layers, want one SIF file (for an OCI image use docker://)", ref, len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != LayerMediaType && l.MediaType != LayerMediaTypeProto {
		return nil, fmt.Errorf("%s is not a SIF artifact: its layer has media type %q, want %s (for an OCI image use docker://)", ref, l.MediaType, LayerMediaType)
	}
	if l.Digest.Algorithm() != digest.SHA256 || l.Digest.Validate() != nil || l.Size <= 0 {
		return nil, fmt.Errorf("%s: the SIF layer's descriptor is malformed (digest %q, size %d)", ref, l.Digest, l.Size)
	}
	return &Artifact{Ref: ref, Manifest: desc, Layer: l, repo: repo}, nil
}

// Open streams the SIF file. It is not verified here; the caller checks
// its size and digest against a.Layer as it stores it.
func (a *Artifact) Open(ctx context.Context) (io.ReadCloser, error) {
	rc, err := a.repo.Blobs().Fetch(ctx, a.Layer)
	if err != nil {
		return nil, registryErr(a.Ref.String(), a.Ref.Host, err)
	}
	return rc, nil
}

// Title is the file name the pusher gave the SIF ("" when none).
func (a *Artifact) Title() string { return a.Layer.Annotations[TitleAnnotation] }

// PushOptions say how to push.
type PushOptions struct {
	Options
	// Title is the layer's file name (the SIF's base name).
	Title string
	// Created is the manifest's creation time (zero: none).
	Created time.Time
	// Progress, when set, is told of each chunk of the SIF uploaded.
	Progress func(n int64)
	// Hashing, when set, is called before the SIF is read to hash it.
	Hashing func()
}

// Push uploads the SIF open in f as the artifact ref, as Apptainer does:
// the empty config, the SIF as the one layer, the manifest tagged (or
// stored under its digest). Blobs the registry has already are not sent
// again. It returns the manifest's descriptor.
func Push(ctx context.Context, f *os.File, ref Ref, o PushOptions) (ocispec.Descriptor, error) {
	repo, err := repository(ref, o.Options)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if o.Hashing != nil {
		o.Hashing()
	}
	h := sha256.New()
	size, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	layer := ocispec.Descriptor{
		MediaType:   LayerMediaType,
		Digest:      digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))),
		Size:        size,
		Annotations: map[string]string{TitleAnnotation: o.Title},
	}
	config := ocispec.Descriptor{
		MediaType: ConfigMediaType,
		Digest:    digest.FromString(emptyConfig),
		Size:      int64(len(emptyConfig)),
		Data:      []byte(emptyConfig),
	}
	man, err := manifestJSON(config, layer, o.Created)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if ref.Digest != "" && string(mdesc.Digest) != ref.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("%s: the artifact of this SIF has digest %s, not the one named; push it by tag", ref, mdesc.Digest)
	}
	push := func(d ocispec.Descriptor, r io.Reader) error {
		ok, err := repo.Exists(ctx, d)
		if err == nil && ok {
			return nil
		}
		if err := repo.Push(ctx, d, r); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return registryErr(ref.String(), ref.Host, err)
		}
		return nil
	}
	if err := push(config, strings.NewReader(emptyConfig)); err != nil {
		return ocispec.Descriptor{}, err
	}
	var r io.Reader = io.NewSectionReader(f, 0, size)
	if o.Progress != nil {
		r = &progressReader{r: r, fn: o.Progress}
	}
	if err := push(layer, r); err != nil {
		return ocispec.Descriptor{}, err
	}
	if ref.Digest != "" {
		err = repo.Push(ctx, mdesc, bytes.NewReader(man))
	} else {
		err = repo.PushReference(ctx, mdesc, bytes.NewReader(man), ref.Tag)
	}
	if err != nil {
		return ocispec.Descriptor{}, registryErr(ref.String(), ref.Host, err)
	}
	return mdesc, nil
}

// manifestJSON is the artifact's manifest, as Apptainer writes it.
func manifestJSON(config, layer ocispec.Descriptor, created time.Time) ([]byte, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}
	if !created.IsZero() {
		m.Annotations = map[string]string{CreatedAnnotation: created.UTC().Format(time.RFC3339)}
	}
	return json.Marshal(m)
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// registryErr turns a registry client error into one line that says what
// went wrong and what to do.
func registryErr(what, host string, err error) error {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		codes := map[string]bool{}
		for _, e := range er.Errors {
			codes[e.Code] = true
		}
		switch {
		case er.StatusCode == http.StatusUnauthorized || codes[errcode.ErrorCodeUnauthorized]:
			return fmt.Errorf("%s: authentication to %s failed (check --docker-username/--docker-password, LAUNCH_DOCKER_USERNAME/LAUNCH_DOCKER_PASSWORD or 'launch registry login')", what, host)
		case er.StatusCode == http.StatusForbidden || codes[errcode.ErrorCodeDenied]:
			return fmt.Errorf("%s: %s denied access (are you allowed to use this repository?)", what, host)
		case er.StatusCode == http.StatusNotFound || codes[errcode.ErrorCodeManifestUnknown] || codes[errcode.ErrorCodeNameUnknown]:
			return fmt.Errorf("%s: not found in %s (no such repository, tag or digest)", what, host)
		case er.StatusCode == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("%s: %s refused the SIF as too large (HTTP 413); ask its administrators for a larger upload limit", what, host)
		case er.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %s refuses: too many requests, try again later", what, host)
		}
		msg := http.StatusText(er.StatusCode)
		if len(er.Errors) > 0 {
			msg = er.Errors.Error()
		}
		return fmt.Errorf("%s: registry %s refused (HTTP %d): %s", what, host, er.StatusCode, oneLine(msg))
	}
	switch {
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("%s: authentication to %s failed: it wants a user name and password (give --docker-username/--docker-password or --docker-login, or run 'launch registry login')", what, host)
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("%s: not found in %s (no such repository, tag or digest)", what, host)
	case errors.Is(err, errdef.ErrSizeExceedsLimit):
		return fmt.Errorf("%s: the registry's answer is too large: not a SIF artifact", what)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", what)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: registry %s is not reachable: connection refused", what, host)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s: registry %s speaks plain HTTP; use --nohttps if you trust it", what, host)
	case strings.Contains(err.Error(), "no such host"):
		return fmt.Errorf("%s: registry host %s not found (DNS)", what, host)
	}
	return fmt.Errorf("%s: %s", what, oneLine(err.Error()))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
