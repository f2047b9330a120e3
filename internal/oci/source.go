// Package oci fetches OCI and Docker images from their sources — a registry
// (docker://), an OCI image layout directory (oci:), an OCI archive
// (oci-archive:) or a `docker save` archive (docker-archive:) — using
// go-containerregistry, picks the image for the wanted platform from
// multi-architecture indexes, and hands out its configuration and layers as
// verified streams: every byte read is checked against the digests the
// manifest and configuration promise, and a mismatch is an error at the end
// of the stream.
//
// It does not unpack layers (internal/layer does), convert images (internal/
// build does) or keep a cache (internal/cache does, behind BlobStore). It
// is only imported by the build side of the command line: the run path
// never links the registry client's initialisation into its hot path.
//
// It must not write the image anywhere (internal/ocibuild and internal/cache
// do), nor trust a byte it has not checked against its digest.
package oci

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/launch-hpc/launch/internal/transport"
)

// Transport is the kind of image source.
type Transport string

// The transports launch reads.
const (
	Docker        Transport = transport.Docker
	Layout        Transport = transport.Layout
	Archive       Transport = transport.Archive
	DockerArchive Transport = transport.DockerArchive
)

// Source is a parsed image source.
type Source struct {
	// Transport says where the image comes from.
	Transport Transport
	// Ref is the registry reference (docker), or the tag inside a layout
	// or archive ("" when none was given).
	Ref string
	// Path is the layout directory or archive file.
	Path string
	// Raw is the source as the user wrote it.
	Raw string
}

func (s Source) String() string { return s.Raw }

// transportOf splits s into transport name and rest (see transport.Split).
func transportOf(s string) (name, rest string, ok bool) { return transport.Split(s) }

// LooksLikeSource reports whether s names an image by transport
// ("docker://…", "oci:…", or an unknown "foo:…") rather than a local path.
// A path that exists is never a transport.
func LooksLikeSource(s string) bool { return transport.LooksLikeSource(s) }

// Known lists the transports for error messages.
const Known = transport.Known

// ParseSource parses an image source such as docker://alpine:3.20,
// oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG].
func ParseSource(s string) (Source, error) {
	if m, ok := transport.Unsupported(s); ok {
		return Source{}, errors.New(m)
	}
	tname, rest, ok := transportOf(s)
	if !ok {
		return Source{}, fmt.Errorf("%q is not an image source (want one of %s)", s, Known)
	}
	src := Source{Transport: Transport(tname), Raw: s}
	switch src.Transport {
	case Docker:
		if !strings.HasPrefix(rest, "//") {
			return Source{}, fmt.Errorf("%q: a registry image is written docker://REPOSITORY[:TAG|@DIGEST]", s)
		}
		rest = strings.TrimPrefix(rest, "//")
		if rest == "" {
			return Source{}, fmt.Errorf("%q: no image named after docker://", s)
		}
		src.Ref = rest
	case Layout, Archive, DockerArchive:
		rest = strings.TrimPrefix(rest, "//")
		if rest == "" {
			return Source{}, fmt.Errorf("%q: no path after %s:", s, src.Transport)
		}
		src.Path, src.Ref = splitTag(rest)
	case transport.Oras:
		return Source{}, fmt.Errorf("%q: oras:// holds SIF files, not OCI images (launch pull and launch build read it)", s)
	default:
		return Source{}, fmt.Errorf("unknown transport %q in %q (launch reads %s)", tname, s, Known)
	}
	return src, nil
}

// splitTag splits PATH[:TAG]. A path that exists as given keeps its colons;
// otherwise the part after the last colon is the tag if it has no slash.
func splitTag(s string) (string, string) {
	if _, err := os.Stat(s); err == nil {
		return s, ""
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || strings.Contains(s[i+1:], "/") {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// ErrNotFound is wrapped by errors for images, tags or files that are not
// there.
var ErrNotFound = errors.New("not found")

// notFound is an error that says what is missing and matches ErrNotFound.
type notFound struct{ msg string }

func (e notFound) Error() string        { return e.msg }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

func notFoundf(format string, a ...any) error { return notFound{fmt.Sprintf(format, a...)} }
