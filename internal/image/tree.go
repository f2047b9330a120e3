package image

import (
	"context"
	"fmt"
)

// ReadTree lists the files (every entry but directories) below dir, a path
// in img, sorted, and reads those want accepts (at most 16 MiB each), as
// ReadMeta reads /.singularity.d: for `launch inspect --app`,
// `--list-apps`, `--startscript`, `--test`, `--helpfile`. A dir that is not
// there has no files.
func ReadTree(ctx context.Context, img *Image, unsquashfs, dir string, want func(string) bool) ([]string, map[string]string, error) {
	t := treeOf(img, unsquashfs)
	files, err := t.list(ctx, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s of image %s: %w", dir, img.Path, err)
	}
	data := map[string]string{}
	for _, f := range files {
		if !want(f) {
			continue
		}
		b, err := t.read(ctx, f)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s from image %s: %w", f, img.Path, err)
		}
		data[f] = string(b)
	}
	return files, data, nil
}
