package oci

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		in, err   string
		transport Transport
		ref, path string
	}{
		{in: "docker://alpine:3.20", transport: Docker, ref: "alpine:3.20"},
		{in: "docker://reg:5000/a/b@sha256:abc", transport: Docker, ref: "reg:5000/a/b@sha256:abc"},
		{in: "oci:/some/dir:v1", transport: Layout, path: "/some/dir", ref: "v1"},
		{in: "oci:/some/dir", transport: Layout, path: "/some/dir"},
		{in: "oci:rel/dir:tag/x", transport: Layout, path: "rel/dir:tag/x"},
		{in: "oci-archive:/a.tar:latest", transport: Archive, path: "/a.tar", ref: "latest"},
		{in: "docker-archive:/a.tar", transport: DockerArchive, path: "/a.tar"},
		{in: "library://alpine", err: "not supported"},
		{in: "shub://x", err: "not supported"},
		{in: "oras://h/x:1", err: "holds SIF files"},
		{in: "foo://x", err: "unknown transport"},
		{in: "docker:alpine", err: "docker://"},
		{in: "docker://", err: "no image"},
		{in: "oci:", err: "no path"},
		{in: "/not/a/source", err: "not an image source"},
	}
	for _, tt := range tests {
		got, err := ParseSource(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSource(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.Transport != tt.transport || got.Ref != tt.ref || got.Path != tt.path {
			t.Errorf("ParseSource(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"docker://alpine":                               "alpine_latest",
		"docker://alpine:3.20":                          "alpine_3.20",
		"docker://reg:5000/group/app:v1":                "app_v1",
		"docker://reg:5000/app@sha256:0123456789abcdef": "app_0123456789ab",
		"oci:/x/layout:v1":                              "layout_v1",
		"oci-archive:/x/img.tar":                        "img",
	} {
		s, err := ParseSource(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Name(); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

// memRegistry is go-containerregistry's in-memory registry; handler, when
// set, sees every request first and may answer it itself.
func memRegistry(t *testing.T, handler func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handler != nil && handler(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func push(t *testing.T, host, repoTag string, img v1.Image) {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func withArch(t *testing.T, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// readAll reads every layer to its end, as the build does.
func readAll(t *testing.T, im *Image) error {
	t.Helper()
	ls, err := im.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Open(context.Background(), nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestOpenRemote(t *testing.T) {
	host := memRegistry(t, nil)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	amd, arm := withArch(t, img, "amd64"), withArch(t, img, "arm64")
	push(t, host, "test/amd:v1", amd)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, _ := name.ParseReference(host+"/test/multi:v1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	armDigest, _ := arm.Digest()
	amdDigest, _ := amd.Digest()

	tests := []struct {
		src, arch string
		digest    v1.Hash
		err       string
	}{
		{src: "docker://" + host + "/test/amd:v1", arch: "amd64", digest: amdDigest},
		{src: "docker://" + host + "/test/amd:v1", arch: "arm64", err: "image is for linux/amd64, wanted linux/arm64"},
		{src: "docker://" + host + "/test/multi:v1", arch: "arm64", digest: armDigest},
		{src: "docker://" + host + "/test/multi:v1", arch: "arm64/v8", digest: armDigest},
		{src: "docker://" + host + "/test/multi:v1", arch: "amd64", digest: amdDigest},
		{src: "docker://" + host + "/test/multi:v1", arch: "s390x", err: "no image for linux/s390x in this multi-platform index (it has: linux/amd64, linux/arm64/v8"},
		{src: "docker://" + host + "/test/amd:nope", arch: "amd64", err: "not found"},
		{src: "docker://" + host + "/test/nothing", arch: "amd64", err: "not found"},
		{src: "docker://" + host + "/BAD", arch: "amd64", err: "not a valid image reference"},
	}
	for _, tt := range tests {
		src, err := ParseSource(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		im, err := Open(context.Background(), src, Options{Arch: tt.arch, Insecure: true})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s --arch %s: error %v, want %q", tt.src, tt.arch, err, tt.err)
			}
			if err == nil {
				im.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("%s --arch %s: %v", tt.src, tt.arch, err)
			continue
		}
		if im.Digest != tt.digest {
			t.Errorf("%s --arch %s: digest %s, want %s", tt.src, tt.arch, im.Digest, tt.digest)
		}
		if err := readAll(t, im); err != nil {
			t.Errorf("%s: reading layers: %v", tt.src, err)
		}
		im.Close()
	}
}

// TestOpenRemoteTampered: a registry that serves other bytes for a blob
// than its digest is caught as a digest mismatch.
func TestOpenRemoteTampered(t *testing.T) {
	img, err := random.Image(4096, 1)
	if err != nil {
		t.Fatal(err)
	}
	img = withArch(t, img, "amd64")
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	tamper := false
	host := memRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if tamper && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
			rc, _ := ls[0].Compressed()
			b, _ := io.ReadAll(rc)
			b[len(b)-10] ^= 0xff
			w.Write(b)
			return true
		}
		return false
	})
	push(t, host, "test/img:v1", img)
	tamper = true
	src, _ := ParseSource("docker://" + host + "/test/img:v1")
	im, err := Open(context.Background(), src, Options{Arch: "amd64", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	err = readAll(t, im)
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("tampered blob: error %v, want a digest error", err)
	}
}

func TestOpenRemoteAuth(t *testing.T) {
	host := memRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "u" && p == "p" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	src, _ := ParseSource("docker://" + host + "/test/img:v1")
	_, err := Open(context.Background(), src, Options{Insecure: true, Username: "u", Password: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "authentication to "+host+" failed") {
		t.Fatalf("error %v, want authentication failure", err)
	}
	_, err = Open(context.Background(), src, Options{Insecure: true, Username: "u", Password: "p"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("with the right password: %v, want not found (nothing pushed)", err)
	}
}

func TestOpenRemoteDown(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(s.URL, "http://")
	s.Close()
	src, _ := ParseSource("docker://" + host + "/test/img:v1")
	_, err := Open(context.Background(), src, Options{Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "not reachable: connection refused") {
		t.Fatalf("error %v", err)
	}
}
