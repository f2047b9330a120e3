package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// writeSIF creates a SIF at path holding the given descriptor inputs.
func writeSIF(t *testing.T, path string, dis ...sif.DescriptorInput) {
	t.Helper()
	f, err := sif.CreateContainerAtPath(path, sif.OptCreateWithDescriptors(dis...))
	if err != nil {
		t.Fatalf("creating test SIF: %v", err)
	}
	if err := f.UnloadContainer(); err != nil {
		t.Fatal(err)
	}
}

func TestExecSIFWithoutRootFilesystem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noroot.sif")
	di, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader([]byte(`{"x":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	writeSIF(t, path, di)
	wantFatal(t, launch(t, "exec", path, "true"), "noroot.sif", "no primary system partition")
}

func TestExecImageForAnotherArchitecture(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	sqfs, err := os.ReadFile(squashImage(t, busyboxTree(t)))
	if err != nil {
		t.Fatal(err)
	}
	di, err := sif.NewDescriptorInput(sif.DataPartition, bytes.NewReader(sqfs),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, other))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "foreign.sif")
	writeSIF(t, path, di)
	wantFatal(t, launch(t, "exec", path, "true"), "foreign.sif", other)
}

func TestExecCorruptSquashFS(t *testing.T) {
	data, err := os.ReadFile(squashImage(t, busyboxTree(t)))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the superblock magic, wreck everything after it.
	for i := 4; i < len(data); i++ {
		data[i] = 0xA5
	}
	path := filepath.Join(t.TempDir(), "corrupt.sqfs")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "exec", path, "true")
	wantFatal(t, r, "corrupt.sqfs")
}

// TestExecUserNamespacesDisabled runs the launcher inside a user namespace
// whose own user.max_user_namespaces is 0, which is what a machine with user
// namespaces disabled looks like, without touching the host's setting.
func TestExecUserNamespacesDisabled(t *testing.T) {
	img := squashImage(t, busyboxTree(t))
	r := launchVia(t, []string{"unshare", "-Ur", "sh", "-c",
		`echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" "$@"`}, "exec", img, "true")
	wantFatal(t, r, "user namespace", "max_user_namespaces")
}

// TestExecWithoutUsableFuse hides /dev/fuse (an empty /dev in a private
// mount namespace around the launcher), as on a node without FUSE.
func TestExecWithoutUsableFuse(t *testing.T) {
	img := squashImage(t, busyboxTree(t))
	r := launchVia(t, []string{"unshare", "-Urm", "sh", "-c",
		`mount -t tmpfs none /dev && exec "$0" "$@"`}, "exec", img, "true")
	wantFatal(t, r, "/dev/fuse")
}
