package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// remoteOptions are the go-containerregistry options for o.
func remoteOptions(ctx context.Context, o Options) []remote.Option {
	ro := []remote.Option{
		remote.WithContext(ctx),
		remote.WithUserAgent("launch"),
		// A registry that is down should be reported at once, not after
		// minutes of retries.
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2}),
	}
	if o.Username != "" {
		ro = append(ro, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})))
	} else if o.Stored != nil {
		ro = append(ro, remote.WithAuthFromKeychain(authn.NewMultiKeychain(storedKeychain(o.Stored), authn.DefaultKeychain)))
	} else {
		ro = append(ro, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	return ro
}

// storedKeychain is the credentials of `launch registry login` as a
// keychain: anonymous for a registry it has none for, so that the next
// keychain is asked.
type storedKeychain func(registry string) (string, string, bool)

func (k storedKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if u, p, ok := k(r.RegistryStr()); ok {
		return authn.FromConfig(authn.AuthConfig{Username: u, Password: p}), nil
	}
	return authn.Anonymous, nil
}

// ParseReference checks a docker:// reference: REPOSITORY[:TAG|@DIGEST],
// with :latest when neither is given.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("docker://%s is not a valid image reference (want docker://[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]): %w",
			ref, oneLineErr(err))
	}
	return r, nil
}

// openRemote resolves the reference in its registry.
func (im *Image) openRemote(ctx context.Context, want v1.Platform) error {
	ref, err := ParseReference(im.Source.Ref, im.opts.Insecure)
	if err != nil {
		return err
	}
	ro := remoteOptions(ctx, im.opts)
	desc, err := remote.Get(ref, ro...)
	if err != nil {
		return remoteErr(im.Source, ref, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return remoteErr(im.Source, ref, err)
		}
		return im.fromIndex(idx, want)
	}
	if !desc.MediaType.IsImage() {
		return fmt.Errorf("%s: the registry returned a %s, not an image", im.Source, desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return remoteErr(im.Source, ref, err)
	}
	im.img, im.Digest = img, desc.Digest
	return nil
}

// remoteErr turns a registry client error into one line that says what
// went wrong and what to do.
func remoteErr(src Source, ref name.Reference, err error) error {
	reg := ref.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range te.Errors {
			codes[d.Code] = true
		}
		switch {
		case te.StatusCode == http.StatusUnauthorized || codes[transport.UnauthorizedErrorCode]:
			return fmt.Errorf("%s: authentication to %s failed (check --docker-username/--docker-password, LAUNCH_DOCKER_USERNAME/LAUNCH_DOCKER_PASSWORD, 'launch registry login' or ~/.docker/config.json)", src, reg)
		case te.StatusCode == http.StatusForbidden || codes[transport.DeniedErrorCode]:
			return fmt.Errorf("%s: %s denied access (are you allowed to read this repository?)", src, reg)
		case te.StatusCode == http.StatusNotFound || codes[transport.ManifestUnknownErrorCode] || codes[transport.NameUnknownErrorCode]:
			return notFoundf("%s: not found in %s (no such repository, tag or digest)", src, reg)
		case te.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %s refuses: too many requests, try again later", src, reg)
		}
		return fmt.Errorf("%s: registry %s refused: %s", src, reg, oneLineErr(te))
	}
	var ue *url.Error
	if errors.As(err, &ue) || isNetErr(err) {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("%s: registry %s is not reachable: connection refused", src, reg)
		case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
			return fmt.Errorf("%s: registry %s speaks plain HTTP; use --nohttps if you trust it", src, reg)
		case strings.Contains(err.Error(), "no such host"):
			return fmt.Errorf("%s: registry host %s not found (DNS)", src, reg)
		}
		return fmt.Errorf("%s: cannot reach registry %s: %s", src, reg, oneLineErr(err))
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: interrupted", src)
	}
	return fmt.Errorf("%s: %s", src, oneLineErr(err))
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}
