package oras

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in                    string
		host, repo, tag, dgst string
		name, err             string
	}{
		{in: "oras://127.0.0.1:5000/test/app:v1", host: "127.0.0.1:5000", repo: "test/app", tag: "v1", name: "app_v1"},
		{in: "oras://registry.example.org/g/sub/app", host: "registry.example.org", repo: "g/sub/app", tag: "latest", name: "app_latest"},
		{in: "oras://localhost/app@sha256:" + strings.Repeat("a", 64), host: "localhost", repo: "app", dgst: "sha256:" + strings.Repeat("a", 64), name: "app_aaaaaaaaaaaa"},
		{in: "oras://alpine:3", host: dockerHub, repo: "library/alpine", tag: "3", name: "alpine_3"},
		{in: "oras://user/img", host: dockerHub, repo: "user/img", tag: "latest", name: "img_latest"},
		{in: "oras://", err: "no repository"},
		{in: "oras:x", err: "written oras://"},
		{in: "docker://x", err: "written oras://"},
		{in: "oras://h.org/UPPER", err: "not a valid ORAS reference"},
		{in: "oras://h.org/a@sha256:12", err: "not a valid ORAS reference"},
	} {
		r, err := ParseRef(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseRef(%q): err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q): %v", c.in, err)
			continue
		}
		if r.Host != c.host || r.Repository != c.repo || r.Tag != c.tag || r.Digest != c.dgst || r.Name() != c.name {
			t.Errorf("ParseRef(%q) = %+v (name %s)", c.in, r, r.Name())
		}
	}
}

// TestManifestForm: the manifest has Apptainer's form (see its
// internal/pkg/client/oras/image.go): the empty config inline, one layer.
func TestManifestForm(t *testing.T) {
	cfg := ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromString(emptyConfig), Size: 2, Data: []byte(emptyConfig)}
	l := ocispec.Descriptor{MediaType: LayerMediaType, Digest: digest.FromString("sif"), Size: 3,
		Annotations: map[string]string{TitleAnnotation: "a.sif"}}
	b, err := manifestJSON(cfg, l, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	c := m["config"].(map[string]any)
	if m["schemaVersion"] != 2.0 || m["mediaType"] != "application/vnd.oci.image.manifest.v1+json" ||
		c["mediaType"] != "application/vnd.sylabs.sif.config.v1+json" || c["data"] != "e30=" ||
		c["digest"] != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("manifest: %s", b)
	}
	ls := m["layers"].([]any)
	if len(ls) != 1 || ls[0].(map[string]any)["mediaType"] != "application/vnd.sylabs.sif.layer.v1.sif" {
		t.Errorf("layers: %s", b)
	}
	if m["annotations"].(map[string]any)[CreatedAnnotation] != "2024-01-02T03:04:05Z" {
		t.Errorf("annotations: %s", b)
	}
}

func TestIsLoopback(t *testing.T) {
	for h, want := range map[string]bool{"localhost:5000": true, "127.0.0.1:1": true, "[::1]:5000": true, "10.0.0.1:5000": false, "example.org": false} {
		if got := isLoopback(h); got != want {
			t.Errorf("isLoopback(%q) = %v", h, got)
		}
	}
}
