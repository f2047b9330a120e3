package oci

import (
	"context"
	"os"

	"github.com/launch-hpc/launch/internal/layer"
)

// untar unpacks the (possibly compressed) tar file into dir, with the same
// confinement as image layers and at most maxSize bytes of files (0: no
// limit).
func untar(ctx context.Context, file, dir string, maxSize int64) error {
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
	if _, err := layer.Apply(dir, r, layer.Options{MaxSize: maxSize}); err != nil {
		return err
	}
	return nil
}
