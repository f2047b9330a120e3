// Package oras moves SIF files through OCI registries as ORAS artifacts,
// in the form Apptainer reads and writes (`apptainer push|pull oras://…`):
// an OCI image manifest whose config is the empty JSON object with the
// media type ConfigMediaType and whose one layer is the SIF file, media
// type LayerMediaType, titled with its file name. It uses the ORAS Go
// library (oras.land/oras-go/v2) for the registry protocol and its
// authentication.
//
// It is only linked into the launch-oci helper. It checks what the registry
// says (one SIF layer, bounded manifest, digests) but does not store
// anything: internal/ocicli puts the SIF into the cache or the output file.
package oras

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/launch-hpc/launch/internal/transport"
)

// The media types of a SIF stored as an ORAS artifact (Apptainer's).
const (
	// ConfigMediaType is the config descriptor's media type.
	ConfigMediaType = "application/vnd.sylabs.sif.config.v1+json"
	// LayerMediaType is the media type of the layer that is the SIF file.
	LayerMediaType = "application/vnd.sylabs.sif.layer.v1.sif"
	// LayerMediaTypeProto is the layer media type Singularity before 3.7
	// wrote (with its typo); pulls accept it.
	LayerMediaTypeProto = "appliciation/vnd.sylabs.sif.layer.tar"
	// TitleAnnotation names the layer's file.
	TitleAnnotation = "org.opencontainers.image.title"
	// CreatedAnnotation is the manifest's creation time.
	CreatedAnnotation = "org.opencontainers.image.created"
)

// emptyConfig is the config blob: the empty JSON object.
const emptyConfig = "{}"

// Options say how to reach the registry.
type Options struct {
	// Username and Password, when Username is set, authenticate.
	Username, Password string
	// Stored, when set, gives the credentials of `launch registry login`
	// for a registry host (used when Username is not set).
	Stored func(registry string) (username, password string, ok bool)
	// DockerConfig also reads ~/.docker/config.json (and its credential
	// helpers) for hosts Stored has nothing for.
	DockerConfig bool
	// PlainHTTP talks HTTP, not HTTPS (--nohttps); loopback registries
	// always get plain HTTP, as with docker://.
	PlainHTTP bool
}

// Ref is a parsed oras:// reference.
type Ref struct {
	// Host is the registry, HOST[:PORT].
	Host string
	// Repository is the repository path in it.
	Repository string
	// Tag or Digest (one of them) names the artifact.
	Tag, Digest string
	// Raw is the reference as the user wrote it.
	Raw string
}

func (r Ref) String() string { return r.Raw }

// Reference is what the registry is asked for: the tag or the digest.
func (r Ref) Reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// Name is the file name Apptainer gives a pull without OUT: the last path
// component and the tag (NAME_TAG), or NAME_DIGEST12 for a digest.
func (r Ref) Name() string {
	base := r.Repository[strings.LastIndexByte(r.Repository, '/')+1:]
	if r.Digest != "" {
		hex := r.Digest[strings.IndexByte(r.Digest, ':')+1:]
		return base + "_" + hex[:min(12, len(hex))]
	}
	return base + "_" + r.Tag
}

// dockerHub is where references without a registry go, as in Apptainer.
const dockerHub = "registry-1.docker.io"

// ParseRef parses oras://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]
// (TAG defaults to latest; REGISTRY to Docker Hub, as Apptainer does).
func ParseRef(s string) (Ref, error) {
	name, rest, ok := transport.Split(s)
	if !ok || name != transport.Oras || !strings.HasPrefix(rest, "//") {
		return Ref{}, fmt.Errorf("%q: an ORAS artifact is written oras://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]", s)
	}
	rest = strings.TrimPrefix(rest, "//")
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%s is not a valid ORAS reference (want oras://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]): %s", s, why)
	}
	if rest == "" {
		return bad("no repository")
	}
	host, path := dockerHub, rest
	if i := strings.IndexByte(rest, '/'); i > 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, path = first, rest[i+1:]
		}
	}
	if host == dockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	ref := Ref{Host: host, Raw: s}
	if i := strings.IndexByte(path, '@'); i >= 0 {
		ref.Digest, path = path[i+1:], path[:i]
	} else if i := strings.LastIndexByte(path, ':'); i >= 0 && !strings.Contains(path[i:], "/") {
		ref.Tag, path = path[i+1:], path[:i]
	}
	if ref.Digest == "" && ref.Tag == "" {
		ref.Tag = "latest"
	}
	ref.Repository = path
	full := host + "/" + path + "@" + ref.Digest
	if ref.Digest == "" {
		full = host + "/" + path + ":" + ref.Tag
	}
	if _, err := remote.NewRepository(full); err != nil {
		return bad(strings.TrimPrefix(err.Error(), full+": "))
	}
	return ref, nil
}

// isLoopback reports whether host (HOST[:PORT]) is this machine.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// repository is the registry client for ref.
func repository(ref Ref, o Options) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Host + "/" + ref.Repository)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	repo.PlainHTTP = o.PlainHTTP || isLoopback(ref.Host)
	repo.Client = client(o)
	return repo, nil
}

// client is the authenticating HTTP client for o.
func client(o Options) *auth.Client {
	c := &auth.Client{
		Client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		Cache:  auth.NewCache(),
	}
	c.SetUserAgent("launch")
	var docker auth.CredentialFunc
	if o.DockerConfig {
		if st, err := credentials.NewStoreFromDocker(credentials.StoreOptions{}); err == nil {
			docker = credentials.Credential(st)
		}
	}
	c.Credential = func(ctx context.Context, hostport string) (auth.Credential, error) {
		if o.Username != "" {
			return auth.Credential{Username: o.Username, Password: o.Password}, nil
		}
		if o.Stored != nil {
			if u, p, ok := o.Stored(hostport); ok {
				return auth.Credential{Username: u, Password: p}, nil
			}
		}
		if docker != nil {
			return docker(ctx, hostport)
		}
		return auth.EmptyCredential, nil
	}
	return c
}

// Ping checks that the registry host answers and accepts o's credentials
// (`launch registry login`).
func Ping(ctx context.Context, host string, o Options) error {
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("%q does not name a registry: %w", host, err)
	}
	reg.PlainHTTP = o.PlainHTTP || isLoopback(host)
	reg.Client = client(o)
	if err := reg.Ping(ctx); err != nil {
		return registryErr(host, host, err)
	}
	return nil
}
