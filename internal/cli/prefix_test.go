package cli

import (
	"testing"

	"github.com/launch-hpc/launch/internal/oci"
)

// TestLauncherKnowsTheSameSources: launch decides which build sources go to
// launch-oci without the OCI libraries; its rule must match internal/oci's.
func TestLauncherKnowsTheSameSources(t *testing.T) {
	for _, s := range []string{"docker://alpine", "oci:dir", "oci-archive:x.tar", "docker-archive:x.tar",
		"./rootfs", "/abs/dir", "app.sif", "library://x", "docker:/x", "ocidir", "shub://x"} {
		if got, want := looksLikeOCISource(s), oci.LooksLikeSource(s); got != want {
			t.Errorf("%q: launch says %v, internal/oci says %v", s, got, want)
		}
	}
}
