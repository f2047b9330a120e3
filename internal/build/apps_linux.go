package build

import (
	"errors"
	"fmt"
	"io"
	"path"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/launch-hpc/launch/internal/layout"
)

// maxApps bounds how many SCIF apps of a tree the inspect metadata holds.
const maxApps = 1024

// readApps reads the metadata of the SCIF apps of the tree root (every
// directory of layout.SCIFApps with a layout.AppMeta directory, as
// Apptainer's inspect counts them), resolving every path inside root.
// nil when the tree has none.
func readApps(root string) (map[string]AppFiles, error) {
	h, err := securejoin.OpenInRoot(root, layout.SCIFApps)
	if err != nil {
		return nil, nil
	}
	defer h.Close()
	d, err := securejoin.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, nil // not a directory
	}
	defer d.Close()
	des, err := d.ReadDir(maxApps)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s in the image: %w", layout.SCIFApps, bare(err))
	}
	apps := map[string]AppFiles{}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		r := path.Join(layout.SCIFApps, de.Name())
		if ok, err := lstatIn(root, path.Join(r, layout.AppMeta)); err != nil || !ok {
			continue
		}
		a := AppFiles{Environment: map[string]string{}}
		for _, f := range []struct {
			rel string
			dst *string
		}{{layout.AppRunscript, &a.Runscript}, {layout.AppStartscript, &a.Startscript},
			{layout.AppTest, &a.Test}, {layout.AppHelp, &a.Help}} {
			b, err := ReadInRoot(root, path.Join(r, f.rel))
			if err != nil {
				return nil, err
			}
			*f.dst = string(b)
		}
		lj, err := ReadInRoot(root, path.Join(r, layout.AppLabels))
		if err != nil {
			return nil, err
		}
		a.Labels = ParseLabels(lj)
		env := path.Join(r, layout.AppEnv)
		b, err := ReadInRoot(root, env)
		if err != nil {
			return nil, err
		}
		if b != nil {
			a.Environment[env] = string(b)
		}
		apps[de.Name()] = a
	}
	if len(apps) == 0 {
		return nil, nil
	}
	return apps, nil
}
