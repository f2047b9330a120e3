package oci

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/launch-hpc/launch/internal/layer"
)

// untar unpacks the (possibly compressed) tar file into dir, with the same
// confinement as image layers.
func untar(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(&ctxReader{ctx: ctx, r: f})
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := layer.Apply(dir, r, layer.Options{}); err != nil {
		return err
	}
	return nil
}

// RemoveTree removes dir and everything below it, first making directories
// writable by their owner (images have read-only ones). Errors are ignored:
// it is the last thing done on a temporary tree.
func RemoveTree(dir string) {
	if dir == "" || os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: could not remove temporary directory %s: %v\n", dir, err)
	}
}
